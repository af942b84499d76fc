package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/distq/distq/client"
)

// linesEvery is how often plain progress lines are printed.
const linesEvery = 5 * time.Second

// printWatchSummary prints the end of a watch as text.
func (a *app) printWatchSummary(r *watchResult) {
	w := a.stdout
	fmt.Fprintf(w, "finished %s in %s since created: %s\n", plural(r.Total, "item"), time.Duration(r.Elapsed*float64(time.Second)).Round(100*time.Millisecond), countsText(r.Counts, true))
	failed := r.Counts[client.StateFailed]
	if failed == 0 {
		return
	}
	byCode := map[string]int{}
	for _, f := range r.Failures {
		byCode[f.Code]++
	}
	codes := slices.Sorted(maps.Keys(byCode))
	parts := make([]string, len(codes))
	for i, code := range codes {
		parts[i] = fmt.Sprintf("%s ×%d", code, byCode[code])
	}
	fmt.Fprintf(w, "failed (%d): %s\n", failed, strings.Join(parts, ", "))
	tw := newTable(w)
	fmt.Fprintln(tw, "  LINE\tPRODUCT\tDISTRIBUTION\tCODE\tMESSAGE")
	for _, f := range r.Failures {
		line := "-"
		if f.Line > 0 {
			line = fmt.Sprint(f.Line)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", line, f.ProductKey, f.ID, f.Code, oneLine(f.Message))
	}
	tw.Flush()
	if !r.FailuresListed {
		fmt.Fprintf(w, "  … only the first %d are listed; see them all with: distqctl list --state failed --batch ID\n", len(r.Failures))
	}
}

// countsText is "succeeded 118 · failed 2 · running 10 · queued 67".
func countsText(counts map[client.State]int, finalOnly bool) string {
	order := []client.State{client.StateSucceeded, client.StateFailed, client.StateCanceled,
		client.StateRunning, client.StateSubmitting, client.StateQueued}
	var parts []string
	for _, st := range order {
		n := counts[st]
		always := st == client.StateSucceeded || !finalOnly && st == client.StateFailed
		if n == 0 && !always {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %d", st, n))
	}
	return strings.Join(parts, " · ")
}

// elapsedText is "1m20s since created".
func elapsedText(d time.Duration) string {
	return d.Round(time.Second).String() + " since created"
}

// etaText is "eta 1m30s", or "eta ?" when unknown.
func etaText(d time.Duration) string {
	if d < 0 {
		return "eta ?"
	}
	return "eta " + d.Round(time.Second).String()
}

// display shows progress while following.
type display interface {
	// update shows s at now; elapsed is the time since the work was
	// created.
	update(now time.Time, s snapshot, m *rateMeter, elapsed time.Duration)
	warn(err error)
	close()
}

func newDisplay(mode string, w io.Writer, total int, ids []string) display {
	switch {
	case total == 0: // nothing to show: every item was rejected
		return nopDisplay{}
	case mode == progressBar:
		return newBarDisplay(w, total)
	case mode == progressLines:
		return &linesDisplay{w: w, what: strings.Join(ids, " ")}
	}
	return nopDisplay{}
}

type nopDisplay struct{}

func (nopDisplay) update(time.Time, snapshot, *rateMeter, time.Duration) {}
func (nopDisplay) warn(error)                                            {}
func (nopDisplay) close()                                                {}

// linesDisplay prints a plain line every linesEvery and at the end.
type linesDisplay struct {
	w    io.Writer
	what string
	last time.Time
}

func (d *linesDisplay) update(now time.Time, s snapshot, m *rateMeter, elapsed time.Duration) {
	if now.Sub(d.last) < linesEvery && s.Done < s.Total {
		return
	}
	d.last = now
	pct := 100
	if s.Total > 0 {
		pct = 100 * s.Done / s.Total
	}
	fmt.Fprintf(d.w, "%s %d/%d done (%d%%) · %s · %.1f/s · %s · %s\n",
		now.Format("15:04:05"), s.Done, s.Total, pct, countsText(s.Counts, false), m.perSecond(), etaText(eta(now, s, m)), elapsedText(elapsed))
}

func (d *linesDisplay) warn(err error) {
	fmt.Fprintf(d.w, "%s waiting for the server: %v\n", time.Now().Format("15:04:05"), err)
}

func (d *linesDisplay) close() {}

// barDisplay is a live progress bar (schollz/progressbar) with the counts
// per state, the rate and the ETA after it.
type barDisplay struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func newBarDisplay(w io.Writer, total int) *barDisplay {
	bar := progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionFullWidth(),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(false), // its clock starts with the watch; the description counts from the creation
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionUseANSICodes(true),
	)
	return &barDisplay{w: w, bar: bar}
}

func (d *barDisplay) update(now time.Time, s snapshot, m *rateMeter, elapsed time.Duration) {
	d.bar.Describe(fmt.Sprintf("%.1f/s %s · %s · %s", m.perSecond(), etaText(eta(now, s, m)), countsText(s.Counts, false), elapsedText(elapsed)))
	_ = d.bar.Set(s.Done)
}

func (d *barDisplay) warn(err error) {
	d.bar.Describe("waiting for the server: " + oneLine(err.Error()))
	_ = d.bar.Add(0)
}

func (d *barDisplay) close() {
	if d.bar == nil {
		return
	}
	if !d.bar.IsFinished() {
		_ = d.bar.Exit()
	}
	fmt.Fprintln(d.w)
	d.bar = nil
}
