package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/distq/distq/client"
)

// action is cancel or retry, of one distribution and of a batch.
type action struct {
	name string
	// verb says what a batch's changed items became.
	verb  string
	one   func(*client.Client, context.Context, string) (*client.Distribution, error)
	batch func(*client.Client, context.Context, string) (*client.BatchActionResult, error)
}

func (a *app) cancelCmd() *cobra.Command {
	return a.actionCmd(action{"cancel", "canceled", (*client.Client).Cancel, (*client.Client).CancelBatch},
		"Cancel queued distributions: one (d_…) or every queued one of a batch (b_…)")
}

func (a *app) retryCmd() *cobra.Command {
	return a.actionCmd(action{"retry", "queued again", (*client.Client).Retry, (*client.Client).RetryBatch},
		"Retry failed distributions: one (d_…) or every failed one of a batch (b_…)")
}

// actionCmd is cancel or retry: POST /v1/{distributions|batches}/{id}/{action}.
func (a *app) actionCmd(act action, short string) *cobra.Command {
	return &cobra.Command{
		Use:   act.name + " ID...",
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
				r, err := a.act(cmd.Context(), c, act, id)
				if err != nil {
					if cmd.Context().Err() != nil {
						return err
					}
					fmt.Fprintf(a.stderr, "distqctl: %s %s: %v\n", act.name, id, err)
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

// act applies act to one distribution or every item of a batch, prints
// what changed (table output) and returns the API's answer.
func (a *app) act(ctx context.Context, c *client.Client, act action, id string) (any, error) {
	if strings.HasPrefix(id, "b_") {
		r, err := act.batch(c, ctx, id)
		if err != nil {
			return nil, apiError(err)
		}
		if !a.jsonOutput() {
			fmt.Fprintf(a.stdout, "batch %s: %d %s, %d skipped (changed state meanwhile)\n", r.BatchID, r.Changed, act.verb, r.Skipped)
		}
		return r, nil
	}
	d, err := act.one(c, ctx, id)
	if err != nil {
		return nil, apiError(err)
	}
	if !a.jsonOutput() {
		fmt.Fprintf(a.stdout, "distribution %s: %s\n", d.ID, d.State)
	}
	return d, nil
}
