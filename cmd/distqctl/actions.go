package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/distq/distq/client"
)

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
