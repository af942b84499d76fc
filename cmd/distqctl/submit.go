package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/distq/distq/client"
)

// maxBatch is the API's limit of items per batch.
const maxBatch = 10000

type submitOptions struct {
	file, format     string
	productKey       string
	shared           client.DistributionRequest
	idempotencyKey   string
	noIdempotencyKey bool
	batchSize        int
	wait             bool
	watch            watchOptions
	failedCSV        string
}

func (a *app) submitCmd() *cobra.Command {
	var o submitOptions
	cmd := &cobra.Command{
		Use:   "submit (--product-key KEY | --file FILE) --source ID --target ID",
		Short: "Submit one product, or a CSV / JSON-lines file of products as batches",
		Long: `Submit one product (--product-key) or many (--file, CSV or JSON lines).

CSV: an optional header row naming the columns product_key, source_instance_id,
target_instance_id, target_uid, target_aliyun_id, account; without a header,
one product key per line. JSON lines: one object per line with those fields.
Blank lines and lines starting with # are skipped. --source, --target,
--account, --target-uid and --target-aliyun-id fill what a row leaves out.

Bad lines are reported with their line number and skipped; the rest is sent
in batches of at most --batch-size items. --failed-csv FILE writes the items
the API rejected and, with --wait, those that failed, with their codes, as a
CSV that --file takes back (its report columns outcome, code, message,
request_id, line and distribution_id are ignored on reading). Every request carries an
Idempotency-Key, by default derived from the file's content and the flags,
so running the same command again submits nothing new (for 24 hours, the
server's memory of keys).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.submit(cmd.Context(), &o) },
	}
	f := cmd.Flags()
	f.StringVarP(&o.file, "file", "f", "", "CSV or JSON-lines file of products ('-' for stdin)")
	f.StringVar(&o.format, "format", formatAuto, "format of --file: auto, csv or jsonl (auto: by extension, then content)")
	f.StringVarP(&o.productKey, "product-key", "p", "", "the product to distribute (instead of --file)")
	f.StringVar(&o.shared.SourceInstanceID, "source", "", "source instance id (source_instance_id)")
	f.StringVar(&o.shared.TargetInstanceID, "target", "", "target instance id (target_instance_id)")
	f.StringVar(&o.shared.Account, "account", "", "distq account name (default: the config file's, else the server's default)")
	f.StringVar(&o.shared.TargetUID, "target-uid", "", "target UID (must be the account's own)")
	f.StringVar(&o.shared.TargetAliyunID, "target-aliyun-id", "", "target Alibaba Cloud account name")
	f.StringVar(&o.shared.NotifyURL, "notify-url", "", "where distq sends the signed completion event of each batch (or of the one distribution): see docs/WEBHOOKS.md")
	f.StringVar(&o.idempotencyKey, "idempotency-key", "", "Idempotency-Key (default: derived from the file's content and the flags; with several batches, -1, -2, … is appended)")
	f.BoolVar(&o.noIdempotencyKey, "no-idempotency-key", false, "send no Idempotency-Key: every run submits anew")
	f.IntVar(&o.batchSize, "batch-size", maxBatch, "items per batch (1 to 10000)")
	f.BoolVarP(&o.wait, "wait", "w", false, "follow the submitted work to the end, like watch")
	f.StringVar(&o.failedCSV, "failed-csv", "", "write the rejected (and, with --wait, failed) items with their codes to this CSV, which --file takes back")
	o.watch.addFlags(f)
	cmd.MarkFlagsMutuallyExclusive("file", "product-key")
	cmd.MarkFlagsMutuallyExclusive("idempotency-key", "no-idempotency-key")
	return cmd
}

func (a *app) submit(ctx context.Context, o *submitOptions) error {
	switch {
	case o.file == "" && o.productKey == "":
		return usagef("submit: give --product-key KEY or --file FILE")
	case o.batchSize < 1 || o.batchSize > maxBatch:
		return usagef("--batch-size must be from 1 to %d, got %d", maxBatch, o.batchSize)
	}
	if err := o.watch.validate(); err != nil {
		return err
	}
	c, err := a.api()
	if err != nil {
		return err
	}
	o.shared.Account = cmp.Or(o.shared.Account, a.cfg.Account)
	if o.file == "" {
		return a.submitOne(ctx, c, o)
	}
	return a.submitFile(ctx, c, o)
}

// deriveKey is the default Idempotency-Key: a hash of everything that
// shapes the requests.
func deriveKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return "distqctl-" + hex.EncodeToString(h.Sum(nil))[:40]
}

func sharedParts(r client.DistributionRequest) []string {
	parts := []string{r.Account, r.ProductKey, r.SourceInstanceID, r.TargetInstanceID, r.TargetUID, r.TargetAliyunID}
	if r.NotifyURL != "" {
		parts = append(parts, "notify_url="+r.NotifyURL)
	}
	return parts
}

func (o *submitOptions) key(derived func() string) string {
	switch {
	case o.noIdempotencyKey:
		return ""
	case o.idempotencyKey != "":
		return o.idempotencyKey
	}
	return derived()
}

func (a *app) submitOne(ctx context.Context, c *client.Client, o *submitOptions) error {
	req := o.shared
	req.ProductKey = o.productKey
	if err := req.Validate(); err != nil {
		return usagef("%v", err)
	}
	key := o.key(func() string { return deriveKey(append([]string{"submit-one/v1"}, sharedParts(req)...)...) })
	res := submitResult{Items: 1, BadLines: []lineError{}, Batches: []submittedBatch{}, Rejected: []rejection{}}
	d, replayed, err := c.Submit(ctx, req, key)
	var ae *client.Error
	if errors.As(err, &ae) && ae.Code == "duplicate_active" {
		rej := rejection{ProductKey: req.ProductKey, Code: ae.Code, Message: ae.Message, ExistingID: ae.ExistingID(), req: req}
		res.Rejected = append(res.Rejected, rej)
		if err := a.saveFailed(ctx, c, o, res.Rejected, nil, false, nil); err != nil {
			return err
		}
		if a.jsonOutput() {
			return a.finishJSON(res, errItems)
		}
		fmt.Fprintf(a.stdout, "rejected: %s: %s\n", ae.Code, ae.Message)
		return errItems
	}
	if err != nil {
		return fmt.Errorf("submit %s: %w", req.ProductKey, apiError(err))
	}
	res.Distribution = d
	if !a.jsonOutput() {
		note := ""
		if replayed {
			note = fmt.Sprintf(" (already submitted by an earlier run with Idempotency-Key %s; nothing new submitted)", key)
		}
		fmt.Fprintf(a.stdout, "distribution %s: %s, product %s to %s%s\n", d.ID, d.State, d.ProductKey, d.TargetInstanceID, note)
	}
	if !o.wait {
		if a.jsonOutput() {
			return a.finishJSON(res, nil)
		}
		return nil
	}
	wr, err := a.follow(ctx, c, []string{d.ID}, &o.watch, nil)
	res.Result = wr
	if err == nil {
		err = a.saveFailed(ctx, c, o, nil, []string{d.ID}, true, nil)
	}
	return a.finishSubmit(res, err)
}

func (a *app) readFile(name string) ([]byte, error) {
	if name == "-" {
		data, err := io.ReadAll(a.stdin)
		if err != nil {
			return nil, usagef("read stdin: %v", err)
		}
		return data, nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, usagef("read the input file: %v", err)
	}
	return data, nil
}

func (a *app) submitFile(ctx context.Context, c *client.Client, o *submitOptions) error {
	data, err := a.readFile(o.file)
	if err != nil {
		return err
	}
	format := o.format
	if format == formatAuto {
		format = detectFormat(o.file, data)
	}
	parsed, bad, err := parseItems(data, format)
	if err != nil {
		return fmt.Errorf("%s: %w", o.file, err)
	}
	for _, need := range []struct {
		flag string
		get  func(client.DistributionRequest) string
	}{
		{"--source", func(r client.DistributionRequest) string { return r.SourceInstanceID }},
		{"--target", func(r client.DistributionRequest) string { return r.TargetInstanceID }},
	} {
		if need.get(o.shared) != "" || len(parsed) == 0 {
			continue
		}
		missing := 0
		for _, it := range parsed {
			if need.get(it.Req) == "" {
				missing++
			}
		}
		if missing == len(parsed) {
			return usagef("%s is required: no line of %s gives it", need.flag, o.file)
		}
	}
	items, invalid := prepare(parsed, o.shared)
	bad = sortLines(append(bad, invalid...))
	res := submitResult{File: o.file, Items: len(items), BadLines: bad, Batches: []submittedBatch{}, Rejected: []rejection{}}
	if !a.jsonOutput() {
		msg := fmt.Sprintf("%s: %d items to submit", o.file, len(items))
		if len(bad) > 0 {
			msg += fmt.Sprintf(", %d bad lines skipped (listed at the end)", len(bad))
		}
		fmt.Fprintln(a.stdout, msg)
	}
	if len(items) == 0 {
		return a.finishSubmit(res, nil)
	}

	base := o.key(func() string {
		return deriveKey(append([]string{"submit-file/v1", format, strconv.Itoa(o.batchSize), string(data)}, sharedParts(o.shared)...)...)
	})
	n := (len(items) + o.batchSize - 1) / o.batchSize
	var ids []string
	lineOf := map[string]int{}
	for i := range n {
		chunk := items[i*o.batchSize : min((i+1)*o.batchSize, len(items))]
		key := base
		if key != "" && n > 1 {
			key = fmt.Sprintf("%s-%d", base, i+1)
		}
		sb, rejected, err := a.sendBatch(ctx, c, o.shared, chunk, key, lineOf)
		res.Rejected = append(res.Rejected, rejected...)
		if err != nil {
			if len(ids) > 0 && !a.jsonOutput() {
				fmt.Fprintf(a.stderr, "distqctl: batches %v were submitted before this error; the same command sends the rest without repeating them\n", ids)
			}
			if ctx.Err() != nil {
				return &interruptedError{Hint: "run the same command again to submit the rest without repeating what was sent"}
			}
			return fmt.Errorf("submit batch %d of %d: %w", i+1, n, err)
		}
		if sb == nil {
			continue // every item rejected: no batch
		}
		res.Batches = append(res.Batches, *sb)
		ids = append(ids, sb.ID)
		if !a.jsonOutput() {
			note := ""
			if sb.Replayed {
				note = " (already submitted by an earlier run with the same Idempotency-Key; nothing new submitted)"
			}
			fmt.Fprintf(a.stdout, "batch %s: %d accepted, %d rejected%s\n", sb.ID, sb.Accepted, sb.Rejected, note)
		}
	}
	if !o.wait || len(ids) == 0 {
		return a.finishSubmit(res, a.saveFailed(ctx, c, o, res.Rejected, nil, false, lineOf))
	}
	wr, err := a.follow(ctx, c, ids, &o.watch, lineOf)
	res.Result = wr
	if err == nil {
		err = a.saveFailed(ctx, c, o, res.Rejected, ids, true, lineOf)
	}
	return a.finishSubmit(res, err)
}
