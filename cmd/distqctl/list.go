package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/distq/distq/client"
)

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
