package main

import (
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
	// Every attempt kept, oldest first: a retried distribution's earlier
	// errors stay visible.
	for _, at := range d.History {
		row(fmt.Sprintf("attempt %d", at.Number), attemptLine(at))
	}
	row("created_at", ts(&d.CreatedAt))
	row("submitted_at", ts(d.SubmittedAt))
	row("finished_at", ts(d.FinishedAt))
	row("updated_at", ts(&d.UpdatedAt))
	tw.Flush()
}

// attemptLine is one attempt on one line: outcome, times, job, error and
// the remote's RequestId.
func attemptLine(at client.Attempt) string {
	parts := []string{string(at.Outcome), at.StartedAt.Format(time.RFC3339)}
	if at.FinishedAt != nil {
		parts[1] += " → " + at.FinishedAt.Format(time.RFC3339)
	}
	if at.JobID != "" {
		parts = append(parts, "job "+at.JobID)
	}
	if e := at.Error; e != nil {
		parts = append(parts, e.Code+": "+oneLine(e.Message))
		if e.RequestID != "" {
			parts = append(parts, "request_id "+e.RequestID)
		}
	}
	return strings.Join(parts, "  ")
}
