package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/distq/distq/internal/distribution"
)

// maxBatch is the API's limit of items per batch.
const maxBatch = 10000

type submitOptions struct {
	file, format     string
	productKey       string
	shared           distribution.Request
	idempotencyKey   string
	noIdempotencyKey bool
	batchSize        int
	wait             bool
	watch            watchOptions
}

// submittedBatch is one batch a submit created (or found, on a replay).
type submittedBatch struct {
	ID             string `json:"id"`
	Items          int    `json:"items"`
	Accepted       int    `json:"accepted"`
	Rejected       int    `json:"rejected"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// Replayed: an earlier run already submitted it with this key; this
	// run submitted nothing new.
	Replayed bool `json:"replayed"`
}

// rejection is an item the API refused.
type rejection struct {
	Line       int    `json:"line,omitempty"`
	ProductKey string `json:"product_key"`
	Code       string `json:"code"`
	Message    string `json:"message"`
	ExistingID string `json:"existing_id,omitempty"`
}

// submitResult is what submit prints with --output json.
type submitResult struct {
	File         string                     `json:"file,omitempty"`
	Items        int                        `json:"items"`
	BadLines     []lineError                `json:"bad_lines"`
	Batches      []submittedBatch           `json:"batches"`
	Distribution *distribution.Distribution `json:"distribution,omitempty"`
	Rejected     []rejection                `json:"rejected"`
	Result       *watchResult               `json:"result,omitempty"`
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
in batches of at most --batch-size items. Every request carries an
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
	c, err := a.client()
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

func sharedParts(r distribution.Request) []string {
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

func idempotencyHeader(key string) http.Header {
	if key == "" {
		return nil
	}
	return http.Header{"Idempotency-Key": {key}}
}

func replayed(resp *response) bool {
	return resp.Status == http.StatusOK || resp.Header.Get("Idempotent-Replayed") == "true"
}

func (a *app) submitOne(ctx context.Context, c *client, o *submitOptions) error {
	req := o.shared
	req.ProductKey = o.productKey
	check := req
	if err := check.Validate(""); err != nil {
		return usagef("%v", err)
	}
	key := o.key(func() string { return deriveKey(append([]string{"submit-one/v1"}, sharedParts(req)...)...) })
	res := submitResult{Items: 1, BadLines: []lineError{}, Batches: []submittedBatch{}, Rejected: []rejection{}}
	resp, err := c.do(ctx, http.MethodPost, "/v1/distributions", req, idempotencyHeader(key), key != "")
	var ae *APIError
	if errors.As(err, &ae) && ae.Code == "duplicate_active" {
		rej := rejection{ProductKey: req.ProductKey, Code: ae.Code, Message: ae.Message, ExistingID: existingID(ae.Details)}
		res.Rejected = append(res.Rejected, rej)
		if a.jsonOutput() {
			return a.finishJSON(res, errItems)
		}
		fmt.Fprintf(a.stdout, "rejected: %s: %s\n", ae.Code, ae.Message)
		return errItems
	}
	if err != nil {
		return fmt.Errorf("submit %s: %w", req.ProductKey, err)
	}
	var d distribution.Distribution
	if err := decode(resp, &d); err != nil {
		return err
	}
	res.Distribution = &d
	if !a.jsonOutput() {
		note := ""
		if replayed(resp) {
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
	return a.finishSubmit(res, err)
}

func existingID(details json.RawMessage) string {
	var ds []map[string]any
	if json.Unmarshal(details, &ds) == nil {
		for _, d := range ds {
			if id, ok := d["existing_id"].(string); ok {
				return id
			}
		}
	}
	return ""
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

func (a *app) submitFile(ctx context.Context, c *client, o *submitOptions) error {
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
		get  func(distribution.Request) string
	}{
		{"--source", func(r distribution.Request) string { return r.SourceInstanceID }},
		{"--target", func(r distribution.Request) string { return r.TargetInstanceID }},
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
		return a.finishSubmit(res, nil)
	}
	wr, err := a.follow(ctx, c, ids, &o.watch, lineOf)
	res.Result = wr
	return a.finishSubmit(res, err)
}

// batchBody is the body of POST /v1/batches: shared fields and items.
type batchBody struct {
	distribution.Request
	Items []itemBody `json:"items"`
}

// itemBody is an item with only the fields its row gives.
type itemBody struct {
	Account          string `json:"account,omitempty"`
	ProductKey       string `json:"product_key"`
	SourceInstanceID string `json:"source_instance_id,omitempty"`
	TargetInstanceID string `json:"target_instance_id,omitempty"`
	TargetUID        string `json:"target_uid,omitempty"`
	TargetAliyunID   string `json:"target_aliyun_id,omitempty"`
}

// sendBatch posts one batch. It returns nil and the rejections when the API
// refused every item; lineOf learns the line of every accepted item's id.
func (a *app) sendBatch(ctx context.Context, c *client, shared distribution.Request, chunk []item, key string, lineOf map[string]int) (*submittedBatch, []rejection, error) {
	body := batchBody{Request: shared, Items: make([]itemBody, len(chunk))}
	for i, it := range chunk {
		r := it.Req
		body.Items[i] = itemBody{r.Account, r.ProductKey, r.SourceInstanceID, r.TargetInstanceID, r.TargetUID, r.TargetAliyunID}
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/batches", body, idempotencyHeader(key), key != "")
	var ae *APIError
	if errors.As(err, &ae) && ae.Code == "idempotency_key_reused" {
		return nil, nil, fmt.Errorf("%w: Idempotency-Key %q was used for a different request; pass another --idempotency-key", err, key)
	}
	var results []itemResult
	var created batchCreated
	switch {
	case errors.As(err, &ae) && ae.Code == "validation_failed" && json.Unmarshal(ae.Details, &results) == nil && len(results) == len(chunk):
		// No item was valid: no batch, one error per item.
	case err != nil:
		return nil, nil, err
	default:
		if err := decode(resp, &created); err != nil {
			return nil, nil, err
		}
		results = created.Results
	}
	var rejected []rejection
	for _, r := range results {
		if r.Index < 0 || r.Index >= len(chunk) {
			return nil, nil, fmt.Errorf("the API answered about item %d of a batch of %d", r.Index, len(chunk))
		}
		it := chunk[r.Index]
		if r.Error != nil {
			rejected = append(rejected, rejection{Line: it.Line, ProductKey: it.Req.ProductKey, Code: r.Error.Code, Message: r.Error.Message, ExistingID: r.ExistingID})
			continue
		}
		lineOf[r.ID] = it.Line
	}
	if created.Batch.ID == "" {
		return nil, rejected, nil
	}
	return &submittedBatch{
		ID: created.Batch.ID, Items: len(chunk), Accepted: created.Accepted, Rejected: created.Rejected,
		IdempotencyKey: key, Replayed: replayed(resp),
	}, rejected, nil
}

// finishSubmit prints the end of a submit (summary, or the JSON result)
// and returns the command's error: err, or errItems when anything did not
// go through.
func (a *app) finishSubmit(res submitResult, err error) error {
	incomplete := len(res.BadLines) > 0 || len(res.Rejected) > 0 || res.Result != nil && !res.Result.allSucceeded()
	if err == nil && incomplete {
		err = errItems
	}
	if a.jsonOutput() {
		return a.finishJSON(res, err)
	}
	if res.Result != nil {
		a.printWatchSummary(res.Result)
	}
	if len(res.Rejected) > 0 {
		fmt.Fprintf(a.stdout, "rejected by the API (%d):\n", len(res.Rejected))
		for _, r := range res.Rejected {
			where := "  "
			if r.Line > 0 {
				where += fmt.Sprintf("line %d: ", r.Line)
			}
			fmt.Fprintf(a.stdout, "%sproduct %s: %s: %s\n", where, r.ProductKey, r.Code, r.Message)
		}
	}
	if len(res.BadLines) > 0 {
		fmt.Fprintf(a.stdout, "bad lines in %s, skipped (%d):\n", res.File, len(res.BadLines))
		for _, b := range res.BadLines {
			fmt.Fprintf(a.stdout, "  %s\n", b)
		}
	}
	return err
}

// finishJSON prints v as JSON (also when err is set, so a script sees how
// far it went) and returns err.
func (a *app) finishJSON(v any, err error) error {
	if perr := a.printJSON(v); perr != nil && err == nil {
		err = perr
	}
	return err
}
