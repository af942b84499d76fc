package main

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/distq/distq/client"
)

// maxDevices is the API's limit of device names per device distribution.
const maxDevices = 100000

// deviceNameRE is the remote's rule for device names (4 to 32 of letters,
// digits, '-', '_', '@', '.', ':'): checked here too, so that a bad line is
// reported with its line number.
var deviceNameRE = regexp.MustCompile(`^[A-Za-z0-9_.:@-]{4,32}$`)

var deviceIDRE = regexp.MustCompile(`^v_[0-9a-f]{12}_[0-9a-f]{10}$`)

func checkDeviceID(id string) error {
	if !deviceIDRE.MatchString(id) {
		return usagef("%q is not a device distribution id (v_…)", id)
	}
	return nil
}

func (a *app) devicesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "Distribute a product's devices (up to 100,000 at a time), and follow them",
		Long: `Device distributions (CreateDeviceDistributeJob): distq splits the names into
remote jobs of at most 10,000, each on the account's job counter shared with
product distributions, and keeps every device's outcome.

The remote distributes the devices' product along with them: once done, the
product's TSL model and scripts can no longer be changed (a one-way door).`,
	}
	cmd.AddCommand(a.devicesSubmitCmd(), a.devicesGetCmd(), a.devicesListCmd(), a.devicesResultsCmd(),
		a.devicesActionCmd("cancel", "Cancel the jobs of a device distribution not yet created"),
		a.devicesActionCmd("retry", "Send the failed devices of a finished device distribution again"))
	return cmd
}

type devicesSubmitOptions struct {
	file             string
	req              client.DeviceDistributionRequest
	targets          []string
	idempotencyKey   string
	noIdempotencyKey bool
	wait             bool
	interval         time.Duration
	timeout          time.Duration
	afterProduct     bool
	progress         string
}

func (a *app) devicesSubmitCmd() *cobra.Command {
	var o devicesSubmitOptions
	cmd := &cobra.Command{
		Use:   "submit --file FILE --product KEY --source ID (--target ID | --targets ID,ID --strategy nearest)",
		Short: "Submit the devices listed in a file",
		Long: `Submit the devices of one product listed in FILE ('-' for stdin): one
device name per line, or a CSV whose header row names a device_name column
(DeviceName, name also do; other columns are ignored). Blank lines and lines
starting with # are skipped. A name that breaks the remote's rule (4 to 32 of
letters, digits, '-', '_', '@', '.', ':') or repeats an earlier one is
reported with its line number and left out. At most 100,000 names.

The request carries an Idempotency-Key derived from the names and the flags:
running the same command again submits nothing new (for 24 hours).

--wait follows the distribution to its end, printing its progress, then the
devices that failed with their codes (all of them: distqctl devices results
ID --csv for a file). Exit status 2 when some device failed, some job was
canceled or its results could not be read.

--after-product first distributes the product itself to the same target
(--target; or, when the server answers that the team's own distribution of
it is already active, that one), follows it to its end like submit --wait,
and submits the devices only once it succeeded. When it fails or is
canceled, distqctl says so and stops with exit status 2: no device is sent.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.devicesSubmit(cmd.Context(), &o) },
	}
	f := cmd.Flags()
	f.StringVarP(&o.file, "file", "f", "", "file of device names ('-' for stdin)")
	f.StringVarP(&o.req.ProductKey, "product", "p", "", "the devices' product key")
	f.StringVar(&o.req.SourceInstanceID, "source", "", "source instance id")
	f.StringVar(&o.req.TargetInstanceID, "target", "", "the target instance id (strategy single)")
	f.StringSliceVar(&o.targets, "targets", nil, "target instance ids, comma-separated (with --strategy nearest)")
	f.StringVar(&o.req.Strategy, "strategy", "", "single (default) or nearest")
	f.StringVar(&o.req.Account, "account", "", "distq account name (default: the config file's, else the server's default)")
	f.StringVar(&o.req.TargetUID, "target-uid", "", "target UID (must be the account's own)")
	f.StringVar(&o.req.TargetAliyunID, "target-aliyun-id", "", "target Alibaba Cloud account name")
	f.StringVar(&o.idempotencyKey, "idempotency-key", "", "Idempotency-Key (default: derived from the names and the flags)")
	f.BoolVar(&o.noIdempotencyKey, "no-idempotency-key", false, "send no Idempotency-Key: every run submits anew")
	f.BoolVarP(&o.wait, "wait", "w", false, "follow the distribution to its end")
	f.DurationVar(&o.interval, "interval", 2*time.Second, "with --wait: time between two looks")
	f.DurationVar(&o.timeout, "timeout", 0, "with --wait: give up after this long (0: never)")
	f.StringVar(&o.req.NotifyURL, "notify-url", "", "where distq sends the signed device_distribution.finished event: see docs/WEBHOOKS.md")
	f.BoolVar(&o.afterProduct, "after-product", false, "first distribute the product to --target and wait for it to succeed; send no device if it does not")
	f.StringVar(&o.progress, "progress", progressAuto, "with --after-product: the product's progress on stderr: auto, bar, lines or none")
	cmd.MarkFlagsMutuallyExclusive("target", "targets")
	cmd.MarkFlagsMutuallyExclusive("idempotency-key", "no-idempotency-key")
	return cmd
}

// parseDeviceNames reads a file of device names: one per line, or a CSV
// with a header naming the device name column. Bad and repeated names are
// returned as lineErrors and left out.
func parseDeviceNames(data []byte) ([]string, []lineError, error) {
	var names []string
	var bad []lineError
	seen := map[string]int{}
	col := -1 // -1: the header is still to come
	err := lines(data, func(n int, line string) error {
		var fields []string
		if strings.ContainsAny(line, ",;\t\"") {
			r := csv.NewReader(strings.NewReader(line))
			r.Comma = ','
			if !strings.Contains(line, ",") && strings.Contains(line, ";") {
				r.Comma = ';'
			} else if !strings.Contains(line, ",") && strings.Contains(line, "\t") {
				r.Comma = '\t'
			}
			rec, err := r.Read()
			if err != nil {
				bad = append(bad, lineError{Line: n, Message: "not a CSV row: " + err.Error()})
				return nil
			}
			fields = rec
		} else {
			fields = []string{line}
		}
		if col < 0 {
			col = 0
			for i, f := range fields {
				switch strings.ToLower(strings.NewReplacer("_", "", "-", "", " ", "").Replace(strings.TrimSpace(f))) {
				case "devicename", "device", "name":
					col = i
					return nil // a header row
				}
			}
		}
		if col >= len(fields) {
			bad = append(bad, lineError{Line: n, Message: fmt.Sprintf("no column %d", col+1)})
			return nil
		}
		name := strings.TrimSpace(fields[col])
		switch first, dup := seen[name]; {
		case !deviceNameRE.MatchString(name):
			bad = append(bad, lineError{Line: n, Message: fmt.Sprintf("%q is not a valid device name (4 to 32 of letters, digits, '-', '_', '@', '.', ':')", name)})
		case dup:
			bad = append(bad, lineError{Line: n, Message: fmt.Sprintf("%q repeats line %d", name, first)})
		default:
			seen[name] = n
			names = append(names, name)
		}
		return nil
	})
	return names, bad, err
}

func (a *app) devicesSubmit(ctx context.Context, o *devicesSubmitOptions) error {
	switch {
	case o.file == "":
		return usagef("devices submit: give --file FILE")
	case o.req.ProductKey == "" || o.req.SourceInstanceID == "":
		return usagef("devices submit: --product and --source are required")
	case o.req.TargetInstanceID == "" && len(o.targets) == 0:
		return usagef("devices submit: give --target ID, or --targets with --strategy nearest")
	case o.interval <= 0:
		return usagef("--interval must be positive")
	case o.afterProduct && o.req.TargetInstanceID == "":
		return usagef("devices submit: --after-product needs --target (the one instance the product goes to)")
	}
	watch := watchOptions{interval: max(o.interval, 50*time.Millisecond), progress: o.progress}
	if err := watch.validate(); err != nil {
		return err
	}
	o.req.TargetInstanceIDs = o.targets
	o.req.Account = cmp.Or(o.req.Account, a.cfg.Account)
	c, err := a.api()
	if err != nil {
		return err
	}
	data, err := a.readFile(o.file)
	if err != nil {
		return err
	}
	names, bad, err := parseDeviceNames(data)
	if err != nil {
		return fmt.Errorf("%s: %w", o.file, err)
	}
	switch {
	case len(names) == 0:
		a.printBadLines(bad)
		return usagef("%s: no valid device name", o.file)
	case len(names) > maxDevices:
		return usagef("%s: %d device names; one device distribution takes at most %d (split the file)", o.file, len(names), maxDevices)
	}
	o.req.DeviceNames = names
	key := ""
	switch {
	case o.noIdempotencyKey:
	case o.idempotencyKey != "":
		key = o.idempotencyKey
	default:
		parts := []string{"devices-submit/v1", o.req.Account, o.req.ProductKey, o.req.SourceInstanceID, o.req.TargetInstanceID,
			strings.Join(o.targets, ","), o.req.Strategy, o.req.TargetUID, o.req.TargetAliyunID, strings.Join(names, "\n")}
		if o.req.NotifyURL != "" {
			parts = append(parts, "notify_url="+o.req.NotifyURL)
		}
		key = deriveKey(parts...)
	}
	if o.afterProduct {
		if err := a.productFirst(ctx, c, o, &watch); err != nil {
			return err
		}
	}
	d, replayed, err := c.SubmitDevices(ctx, o.req, key)
	if err != nil {
		a.printBadLines(bad)
		return fmt.Errorf("submit devices: %w", apiError(err))
	}
	if !a.jsonOutput() {
		note := ""
		if replayed {
			note = fmt.Sprintf(" (already submitted by an earlier run with Idempotency-Key %s; nothing new submitted)", key)
		}
		fmt.Fprintf(a.stdout, "device distribution %s: %s, %s of %s in %s%s\n", d.ID, d.State, plural(d.Devices, "device"), d.ProductKey, plural(len(d.Jobs), "job"), note)
		fmt.Fprintln(a.stdout, "note: the product is distributed along with its devices (its TSL model and scripts are frozen from now on)")
		a.printBadLines(bad)
	}
	if !o.wait {
		if a.jsonOutput() {
			if err := a.printJSON(d); err != nil {
				return err
			}
		}
		if len(bad) > 0 {
			return errItems
		}
		return nil
	}
	final, err := a.followDevices(ctx, c, d.ID, o.interval, o.timeout)
	if err != nil {
		return err
	}
	if a.jsonOutput() {
		if err := a.printJSON(final); err != nil {
			return err
		}
	} else if err := a.printDeviceSummary(ctx, c, final); err != nil {
		return err
	}
	if len(bad) > 0 || final.State != client.DevicesSucceeded || final.Counts.Failed > 0 || final.Counts.Unknown > 0 {
		return errItems
	}
	return nil
}

// productFirst distributes the devices' product to their target (or takes
// the team's own active distribution of it, from the duplicate_active
// answer) and follows it to its end. It returns nil once it succeeded;
// otherwise it says why on stderr and returns errItems: no device is sent.
func (a *app) productFirst(ctx context.Context, c *client.Client, o *devicesSubmitOptions, watch *watchOptions) error {
	req := client.DistributionRequest{Account: o.req.Account, ProductKey: o.req.ProductKey, SourceInstanceID: o.req.SourceInstanceID,
		TargetInstanceID: o.req.TargetInstanceID, TargetUID: o.req.TargetUID, TargetAliyunID: o.req.TargetAliyunID}
	if err := req.Validate(); err != nil {
		return usagef("--after-product: %v", err)
	}
	key := ""
	if !o.noIdempotencyKey {
		key = deriveKey(append([]string{"devices-after-product/v1", o.idempotencyKey}, sharedParts(req)...)...)
	}
	id := ""
	d, replayed, err := c.Submit(ctx, req, key)
	var ae *client.Error
	switch {
	case errors.As(err, &ae) && ae.Code == "duplicate_active" && ae.ExistingID() != "":
		id = ae.ExistingID()
		if !a.jsonOutput() {
			fmt.Fprintf(a.stdout, "product %s: already being distributed to %s by distribution %s; waiting for it\n", req.ProductKey, req.TargetInstanceID, id)
		}
	case err != nil:
		return fmt.Errorf("--after-product: submit product %s: %w (no device was submitted)", req.ProductKey, apiError(err))
	default:
		id = d.ID
		if !a.jsonOutput() {
			note := ""
			if replayed {
				note = " (submitted by an earlier run; nothing new submitted)"
			}
			fmt.Fprintf(a.stdout, "product distribution %s: %s, product %s to %s%s; the devices follow once it succeeds\n", d.ID, d.State, d.ProductKey, d.TargetInstanceID, note)
		}
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	wr, err := a.follow(ctx, c, []string{id}, watch, nil)
	if err != nil {
		var ie *interruptedError
		if errors.As(err, &ie) && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("product distribution %s still running after --timeout; no device was submitted (it goes on on the server: distqctl get %s)", id, id)
		}
		if ie != nil {
			return &interruptedError{Hint: "no device was submitted; the product distribution goes on on the server: distqctl get " + id}
		}
		return fmt.Errorf("--after-product: follow %s: %w (no device was submitted)", id, err)
	}
	if wr.allSucceeded() {
		if !a.jsonOutput() {
			fmt.Fprintf(a.stdout, "product distribution %s succeeded; submitting the devices\n", id)
		}
		return nil
	}
	why := countsText(wr.Counts, true)
	for _, f := range wr.Failures {
		why = f.Code + ": " + f.Message
	}
	fmt.Fprintf(a.stderr, "distqctl: product distribution %s of %s did not succeed (%s): no device was submitted\n", id, req.ProductKey, why)
	return errItems
}

func (a *app) printBadLines(bad []lineError) {
	if len(bad) == 0 || a.jsonOutput() {
		return
	}
	fmt.Fprintf(a.stdout, "%s left out:\n", plural(len(bad), "bad line"))
	for _, b := range sortLines(bad) {
		fmt.Fprintf(a.stdout, "  %s\n", b)
	}
}

// followDevices polls a device distribution every interval until it is
// final, printing a line whenever its progress changes.
func (a *app) followDevices(ctx context.Context, c *client.Client, id string, interval, timeout time.Duration) (*client.DeviceDistribution, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	start := time.Now()
	last := ""
	for {
		d, err := c.GetDevices(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return nil, a.stopped(ctx, id)
			}
			return nil, apiError(err)
		}
		if line := progressLine(d); line != last && !a.jsonOutput() {
			fmt.Fprintf(a.stderr, "%6s  %s\n", time.Since(start).Round(time.Second), line)
			last = line
		}
		if client.DeviceTerminal(d.State) {
			return d, nil
		}
		select {
		case <-ctx.Done():
			return nil, a.stopped(ctx, id)
		case <-time.After(interval):
		}
	}
}

// stopped is the error of a follow that ended before the distribution did.
func (a *app) stopped(ctx context.Context, id string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("device distribution %s still running after --timeout; it goes on on the server (distqctl devices get %s)", id, id)
	}
	return &interruptedError{Hint: "the device distribution goes on on the server: distqctl devices get " + id}
}

func progressLine(d *client.DeviceDistribution) string {
	done := 0
	for _, j := range d.Jobs {
		if j.State == "succeeded" || j.State == "failed" || j.State == "canceled" {
			done++
		}
	}
	c := d.Counts
	return fmt.Sprintf("%s: %d of %d jobs done; devices %d distributed, %d failed, %d pending, %d canceled, %d unknown",
		d.State, done, len(d.Jobs), c.Distributed, c.Failed, c.Pending, c.Canceled, c.Unknown)
}

// maxFailedShown bounds the failed devices a summary lists.
const maxFailedShown = 20

func (a *app) printDeviceSummary(ctx context.Context, c *client.Client, d *client.DeviceDistribution) error {
	a.printDevices(*d)
	if d.Counts.Failed == 0 {
		return nil
	}
	p, err := c.DeviceResults(ctx, d.ID, "failed", "", maxFailedShown)
	if err != nil {
		return apiError(err)
	}
	fmt.Fprintf(a.stdout, "failed devices (%d", d.Counts.Failed)
	if d.Counts.Failed > len(p.Items) {
		fmt.Fprintf(a.stdout, ", the first %d; all: distqctl devices results %s --csv", len(p.Items), d.ID)
	}
	fmt.Fprintln(a.stdout, "):")
	tw := newTable(a.stdout)
	fmt.Fprintln(tw, "DEVICE\tJOB\tCODE\tMESSAGE")
	for _, r := range p.Items {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", r.DeviceName, r.Job, r.Code, oneLine(r.Message))
	}
	return tw.Flush()
}

func (a *app) printDevices(d client.DeviceDistribution) {
	tw := newTable(a.stdout)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("id", d.ID)
	row("state", d.State)
	row("account", d.Account)
	row("product_key", d.ProductKey+" (distributed with the devices)")
	row("source_instance_id", d.SourceInstanceID)
	row("target_instance_ids", strings.Join(d.TargetInstanceIDs, ", "))
	row("strategy", d.Strategy)
	row("devices", strconv.Itoa(d.Devices))
	c := d.Counts
	row("counts", fmt.Sprintf("%d distributed, %d failed, %d pending, %d canceled, %d unknown", c.Distributed, c.Failed, c.Pending, c.Canceled, c.Unknown))
	row("details", d.Details)
	row("created_at", d.CreatedAt.Format(time.RFC3339))
	if d.FinishedAt != nil {
		row("finished_at", d.FinishedAt.Format(time.RFC3339))
	}
	tw.Flush()
	tw = newTable(a.stdout)
	fmt.Fprintln(tw, "JOB\tDEVICES\tSTATE\tJOB_ID\tDISTRIBUTED\tFAILED\tDETAILS\tERROR")
	for _, j := range d.Jobs {
		state := j.State
		if j.WaitReason != "" {
			state += " (" + j.WaitReason + ")"
		}
		if j.Retried {
			state += ", retried"
		}
		errText := "-"
		if j.Error != nil {
			errText = j.Error.Code
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%d\t%d\t%s\t%s\n", j.Index, j.Devices, state, cmp.Or(j.JobID, "-"),
			j.Distributed, j.Failed, cmp.Or(j.Details, "-"), errText)
	}
	tw.Flush()
}

func (a *app) devicesGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show a device distribution (v_…): its counts and jobs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkDeviceID(args[0]); err != nil {
				return err
			}
			c, err := a.api()
			if err != nil {
				return err
			}
			d, err := c.GetDevices(cmd.Context(), args[0])
			if err != nil {
				return apiError(err)
			}
			if a.jsonOutput() {
				return a.printJSON(d)
			}
			a.printDevices(*d)
			return nil
		},
	}
}

func (a *app) devicesListCmd() *cobra.Command {
	var max int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the team's device distributions, following the pages to the end",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.api()
			if err != nil {
				return err
			}
			all := []client.DeviceDistribution{}
			cursor := ""
			for {
				p, err := c.ListDevices(cmd.Context(), cursor, 0)
				if err != nil {
					return apiError(err)
				}
				all = append(all, p.Items...)
				if p.NextCursor == "" || max > 0 && len(all) >= max {
					break
				}
				cursor = p.NextCursor
			}
			if max > 0 && len(all) > max {
				all = all[:max]
			}
			if a.jsonOutput() {
				return a.printJSON(all)
			}
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "ID\tPRODUCT\tTARGETS\tSTATE\tDEVICES\tDISTRIBUTED\tFAILED\tPENDING\tJOBS\tCREATED")
			for _, d := range all {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", d.ID, d.ProductKey, strings.Join(d.TargetInstanceIDs, ","),
					d.State, d.Devices, d.Counts.Distributed, d.Counts.Failed, d.Counts.Pending, len(d.Jobs), d.CreatedAt.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&max, "max", 0, "stop after this many (0: all)")
	return cmd
}

func (a *app) devicesResultsCmd() *cobra.Command {
	var all, asCSV bool
	var out string
	cmd := &cobra.Command{
		Use:   "results ID",
		Short: "The per-device results of a device distribution: the failed ones, or --all",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := checkDeviceID(id); err != nil {
				return err
			}
			c, err := a.api()
			if err != nil {
				return err
			}
			outcome := "failed"
			if all {
				outcome = "all"
			}
			ctx := cmd.Context()
			if out != "" {
				// A temporary file beside it, renamed once the whole CSV is
				// in: a failed request never empties or half-writes --out.
				f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
				if err != nil {
					return usagef("--out: %v", err)
				}
				defer os.Remove(f.Name()) // after a successful rename, nothing is left to remove
				err = c.DeviceResultsCSV(ctx, id, outcome, f)
				if cerr := f.Close(); err == nil && cerr != nil {
					return fmt.Errorf("--out: %w", cerr)
				}
				if err != nil {
					return apiError(err)
				}
				if err := os.Rename(f.Name(), out); err != nil {
					return fmt.Errorf("--out: %w", err)
				}
				return nil
			}
			if asCSV {
				return apiError(c.DeviceResultsCSV(ctx, id, outcome, a.stdout))
			}
			var results []client.DeviceResult
			for r, err := range c.AllDeviceResults(ctx, id, outcome) {
				if err != nil {
					return apiError(err)
				}
				results = append(results, r)
			}
			if a.jsonOutput() {
				if results == nil {
					results = []client.DeviceResult{}
				}
				return a.printJSON(results)
			}
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "DEVICE\tJOB\tCODE\tMESSAGE\tTARGET")
			for _, r := range results {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", r.DeviceName, r.Job, r.Code, oneLine(cmp.Or(r.Message, "-")), cmp.Or(r.TargetInstanceID, "-"))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "every device's result, not only the failed ones")
	cmd.Flags().BoolVar(&asCSV, "csv", false, "print CSV (device_name,job,code,message,target_instance_id)")
	cmd.Flags().StringVar(&out, "out", "", "write the CSV to this file")
	return cmd
}

func (a *app) devicesActionCmd(action, short string) *cobra.Command {
	return &cobra.Command{
		Use:   action + " ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkDeviceID(args[0]); err != nil {
				return err
			}
			c, err := a.api()
			if err != nil {
				return err
			}
			do := c.CancelDevices
			if action == "retry" {
				do = c.RetryDevices
			}
			d, err := do(cmd.Context(), args[0])
			if err != nil {
				return apiError(err)
			}
			if a.jsonOutput() {
				return a.printJSON(d)
			}
			a.printDevices(*d)
			return nil
		},
	}
}
