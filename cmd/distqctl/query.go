package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/distq/distq/client"
)

func (a *app) getCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show a distribution (d_…) or a batch (b_…)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := checkID(id); err != nil {
				return err
			}
			c, err := a.api()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if strings.HasPrefix(id, "b_") {
				b, err := c.GetBatch(ctx, id)
				if err != nil {
					return apiError(err)
				}
				if a.jsonOutput() {
					return a.printJSON(b)
				}
				a.printBatch(*b)
				return nil
			}
			d, err := c.Get(ctx, id)
			if err != nil {
				return apiError(err)
			}
			if a.jsonOutput() {
				return a.printJSON(d)
			}
			a.printDistribution(*d)
			return nil
		},
	}
}

func (a *app) printBatch(b client.Batch) {
	tw := newTable(a.stdout)
	fmt.Fprintf(tw, "id:\t%s\n", b.ID)
	fmt.Fprintf(tw, "account:\t%s\n", b.Account)
	fmt.Fprintf(tw, "size:\t%d\n", b.Size)
	fmt.Fprintf(tw, "created:\t%s\n", b.CreatedAt.Format(time.RFC3339))
	fmt.Fprintf(tw, "done:\t%t\n", b.Done)
	if b.ETA != nil {
		fmt.Fprintf(tw, "eta:\t%s (in %s)\n", b.ETA.Format(time.RFC3339), time.Until(*b.ETA).Round(time.Second))
	}
	for _, st := range client.States {
		fmt.Fprintf(tw, "%s:\t%d\n", st, b.Counts[st])
	}
	tw.Flush()
}

func (a *app) printDistribution(d client.Distribution) {
	tw := newTable(a.stdout)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	ts := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.Format(time.RFC3339)
	}
	row("id", d.ID)
	row("state", string(d.State))
	row("wait_reason", string(d.WaitReason))
	row("product_key", d.ProductKey)
	row("source_instance_id", d.SourceInstanceID)
	row("target_instance_id", d.TargetInstanceID)
	row("target_uid", d.TargetUID)
	row("target_aliyun_id", d.TargetAliyunID)
	row("account", d.Account)
	row("batch_id", d.BatchID)
	row("job_id", d.JobID)
	if d.RemoteStatus != nil {
		row("remote_status", fmt.Sprint(*d.RemoteStatus))
	}
	row("attempts", fmt.Sprint(d.Attempts))
	if d.Error != nil {
		row("error", d.Error.Code+": "+oneLine(d.Error.Message))
		row("error_request_id", d.Error.RequestID)
	}
	row("created_at", ts(&d.CreatedAt))
	row("submitted_at", ts(d.SubmittedAt))
	row("finished_at", ts(d.FinishedAt))
	row("updated_at", ts(&d.UpdatedAt))
	tw.Flush()
}

type listOptions struct {
	client.ListOptions
	max int
}

func (a *app) listCmd() *cobra.Command {
	var o listOptions
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List distributions, following the pages to the end",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.State != "" && !o.State.Valid() {
				return usagef("--state must be one of %v, got %q", client.States, o.State)
			}
			if o.BatchID != "" && (checkID(o.BatchID) != nil || !strings.HasPrefix(o.BatchID, "b_")) {
				return usagef("--batch %q is not a batch id (b_…)", o.BatchID)
			}
			if o.Limit < 1 || o.Limit > 1000 {
				return usagef("--page-size must be from 1 to 1000, got %d", o.Limit)
			}
			c, err := a.api()
			if err != nil {
				return err
			}
			var all []client.Distribution
			for d, err := range c.All(cmd.Context(), o.ListOptions) {
				if err != nil {
					return apiError(err)
				}
				all = append(all, d)
				if o.max > 0 && len(all) >= o.max {
					break
				}
			}
			if a.jsonOutput() {
				return a.printJSON(orEmpty(all))
			}
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "ID\tPRODUCT\tTARGET\tSTATE\tATTEMPTS\tBATCH\tERROR\tUPDATED")
			for _, d := range all {
				errText := "-"
				if d.Error != nil {
					errText = d.Error.Code
				}
				state := string(d.State)
				if d.WaitReason != "" {
					state += " (" + string(d.WaitReason) + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", d.ID, d.ProductKey, d.TargetInstanceID, state, d.Attempts,
					cmpDash(d.BatchID), errText, d.UpdatedAt.Format(time.RFC3339))
			}
			tw.Flush()
			fmt.Fprintf(a.stderr, "%d distributions\n", len(all))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar((*string)(&o.State), "state", "", "only this state: "+strings.Trim(fmt.Sprint(client.States), "[]"))
	f.StringVar(&o.BatchID, "batch", "", "only this batch's distributions")
	f.StringVar(&o.ProductKey, "product-key", "", "only this product")
	f.IntVar(&o.max, "max", 0, "stop after this many (0: all)")
	f.IntVar(&o.Limit, "page-size", 500, "distributions per request (1 to 1000)")
	return cmd
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func cmpDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) cancelCmd() *cobra.Command {
	return a.actionCmd("cancel", "Cancel queued distributions: one (d_…) or every queued one of a batch (b_…)")
}

func (a *app) retryCmd() *cobra.Command {
	return a.actionCmd("retry", "Retry failed distributions: one (d_…) or every failed one of a batch (b_…)")
}

// actionCmd is cancel or retry: POST /v1/{distributions|batches}/{id}/{action}.
func (a *app) actionCmd(action, short string) *cobra.Command {
	return &cobra.Command{
		Use:   action + " ID...",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			for _, id := range ids {
				if err := checkID(id); err != nil {
					return err
				}
			}
			c, err := a.api()
			if err != nil {
				return err
			}
			var (
				firstErr error
				results  []any
			)
			for _, id := range ids {
				r, err := a.action(cmd.Context(), c, action, id)
				if err != nil {
					if cmd.Context().Err() != nil {
						return err
					}
					fmt.Fprintf(a.stderr, "distqctl: %s %s: %v\n", action, id, err)
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				results = append(results, r)
			}
			if a.jsonOutput() {
				if err := a.printJSON(orEmpty(results)); err != nil {
					return err
				}
			}
			if firstErr != nil {
				return &reportedError{firstErr}
			}
			return nil
		},
	}
}

// reportedError is an error already printed; only its exit code remains.
type reportedError struct{ err error }

func (e *reportedError) Error() string { return e.err.Error() }
func (e *reportedError) Unwrap() error { return e.err }

// action cancels or retries one distribution or every item of a batch,
// prints what changed (table output) and returns the API's answer.
func (a *app) action(ctx context.Context, c *client.Client, action, id string) (any, error) {
	if strings.HasPrefix(id, "b_") {
		do := map[string]func(context.Context, string) (*client.BatchActionResult, error){"cancel": c.CancelBatch, "retry": c.RetryBatch}[action]
		r, err := do(ctx, id)
		if err != nil {
			return nil, apiError(err)
		}
		if !a.jsonOutput() {
			verb := map[string]string{"cancel": "canceled", "retry": "queued again"}[action]
			fmt.Fprintf(a.stdout, "batch %s: %d %s, %d skipped (changed state meanwhile)\n", r.BatchID, r.Changed, verb, r.Skipped)
		}
		return r, nil
	}
	do := map[string]func(context.Context, string) (*client.Distribution, error){"cancel": c.Cancel, "retry": c.Retry}[action]
	d, err := do(ctx, id)
	if err != nil {
		return nil, apiError(err)
	}
	if !a.jsonOutput() {
		fmt.Fprintf(a.stdout, "distribution %s: %s\n", d.ID, d.State)
	}
	return d, nil
}
