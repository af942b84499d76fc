package main

import (
	"regexp"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Progress display modes.
const (
	progressAuto  = "auto"  // a bar on a terminal, else lines
	progressBar   = "bar"   // a live bar
	progressLines = "lines" // a plain line now and then
	progressNone  = "none"  // nothing until the summary
)

// watchOptions are the flags of watch, and of submit --wait.
type watchOptions struct {
	interval time.Duration
	progress string
}

func (o *watchOptions) addFlags(f *pflag.FlagSet) {
	f.DurationVar(&o.interval, "interval", time.Second, "how often to poll the server while following")
	f.StringVar(&o.progress, "progress", progressAuto, "progress display on stderr: auto (a bar on a terminal, else lines), bar, lines or none")
}

func (o *watchOptions) validate() error {
	if !slices.Contains([]string{progressAuto, progressBar, progressLines, progressNone}, o.progress) {
		return usagef("--progress must be auto, bar, lines or none, got %q", o.progress)
	}
	if o.interval < 50*time.Millisecond {
		return usagef("--interval must be at least 50ms, got %v", o.interval)
	}
	return nil
}

var idRE = regexp.MustCompile(`^[db]_[0-9a-f]{12}_[0-9a-f]{10}$`)

// checkID returns a usage error unless id is a batch or distribution id.
func checkID(id string) error {
	if !idRE.MatchString(id) {
		return usagef("%q is not a batch id (b_…) or distribution id (d_…)", id)
	}
	return nil
}

func (a *app) watchCmd() *cobra.Command {
	var o watchOptions
	cmd := &cobra.Command{
		Use:   "watch ID...",
		Short: "Follow batches (b_…) or distributions (d_…) to the end with a progress bar",
		Long: `Follow one or more batches (or distributions) until every item is finished,
with a live progress bar (counts per state, rate, ETA) when stderr is a
terminal and a plain line every 5 seconds otherwise. At the end it prints a
summary, with the failures and their remote error codes.

Exit code 0 when every item succeeded, 2 when some failed or were canceled,
3 when interrupted (the work goes on on the server).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			for _, id := range ids {
				if err := checkID(id); err != nil {
					return err
				}
			}
			if err := o.validate(); err != nil {
				return err
			}
			c, err := a.api()
			if err != nil {
				return err
			}
			res, err := a.follow(cmd.Context(), c, ids, &o, nil)
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				err = a.printJSON(res)
			} else {
				a.printWatchSummary(res)
			}
			if err == nil && !res.allSucceeded() {
				err = errItems
			}
			return err
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}
