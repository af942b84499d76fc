package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/distq/distq/internal/distribution"
)

// Progress display modes.
const (
	progressAuto  = "auto"  // a bar on a terminal, else lines
	progressBar   = "bar"   // a live bar
	progressLines = "lines" // a plain line now and then
	progressNone  = "none"  // nothing until the summary
)

// linesEvery is how often plain progress lines are printed.
const linesEvery = 5 * time.Second

// unreachableGrace is how long watch keeps polling through an unreachable
// or unavailable server before it gives up.
const unreachableGrace = 30 * time.Second

// maxFailuresShown bounds the failures listed in a summary.
const maxFailuresShown = 50

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
			c, err := a.client()
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

// snapshot is the state of the followed work at one moment.
type snapshot struct {
	Counts map[distribution.State]int
	Total  int
	Done   int
	// ServerETA is the latest ETA the API gave (zero if none).
	ServerETA time.Time
	// etag names the counts of a lone batch, for the next long poll.
	etag string
}

// longPoll asks poll to wait on the server, for one batch, until its counts
// differ from those etag names (a batch long poll), instead of the caller
// sleeping between polls.
type longPoll struct {
	wait time.Duration
	etag string
}

// failure is a distribution that failed.
type failure struct {
	Line       int    `json:"line,omitempty"`
	ID         string `json:"id"`
	BatchID    string `json:"batch_id,omitempty"`
	ProductKey string `json:"product_key"`
	Code       string `json:"code"`
	Message    string `json:"message"`
	RequestID  string `json:"request_id,omitempty"`
}

// watchResult is the end of a watch.
type watchResult struct {
	IDs      []string                   `json:"ids"`
	Total    int                        `json:"total"`
	Counts   map[distribution.State]int `json:"counts"`
	Elapsed  float64                    `json:"elapsed_seconds"`
	Failures []failure                  `json:"failures"`
	// FailuresListed is false when the failures were too many to list.
	FailuresListed bool `json:"failures_listed"`
}

func (r *watchResult) allSucceeded() bool {
	return r.Counts[distribution.StateSucceeded] == r.Total
}

// poll reads the state of every id; with lp set and a lone batch, it
// long-polls that batch.
func poll(ctx context.Context, c *client, ids []string, lp *longPoll) (snapshot, error) {
	s := snapshot{Counts: map[distribution.State]int{}}
	for _, id := range ids {
		if strings.HasPrefix(id, "d_") {
			var d distribution.Distribution
			if err := c.getJSON(ctx, "/v1/distributions/"+url.PathEscape(id), &d); err != nil {
				return s, err
			}
			s.Counts[d.State]++
			continue
		}
		var b batchView
		path, header := "/v1/batches/"+url.PathEscape(id), http.Header(nil)
		if lp != nil && len(ids) == 1 && lp.etag != "" {
			path += "?wait=" + lp.wait.String()
			header = http.Header{"If-None-Match": {lp.etag}}
		}
		resp, err := c.do(ctx, http.MethodGet, path, nil, header, true)
		if err == nil {
			err = decode(resp, &b)
		}
		if err != nil {
			return s, err
		}
		s.etag = resp.Header.Get("ETag")
		for st, n := range b.Counts {
			s.Counts[st] += n
		}
		if b.ETA != nil && b.ETA.After(s.ServerETA) {
			s.ServerETA = *b.ETA
		}
	}
	for st, n := range s.Counts {
		s.Total += n
		if st.Terminal() {
			s.Done += n
		}
	}
	return s, nil
}

// follow polls ids until every item is finished, showing progress on
// stderr, and returns the result with its failures. lineOf maps
// distribution ids to input lines, for the summary (may be nil).
func (a *app) follow(ctx context.Context, c *client, ids []string, o *watchOptions, lineOf map[string]int) (*watchResult, error) {
	mode := o.progress
	if mode == progressAuto {
		mode = progressLines
		if a.isTerminal(a.stderr) {
			mode = progressBar
		}
	}
	start := time.Now()
	var (
		disp       display
		rate       = newRateMeter(15 * time.Second)
		failingFor time.Time
		s          snapshot
	)
	defer func() {
		if disp != nil {
			disp.close()
		}
	}()
	// A lone batch is followed by long poll (the server answers as soon as
	// its counts change), at most one request per --interval.
	var lp *longPoll
	lastPoll := time.Time{}
	for {
		var err error
		if lp != nil {
			select {
			case <-ctx.Done():
			case <-time.After(time.Until(lastPoll.Add(o.interval))):
			}
		}
		lastPoll = time.Now()
		s, err = poll(ctx, c, ids, lp)
		lp = nil
		switch {
		case ctx.Err() != nil:
			return nil, &interruptedError{Hint: "the server goes on; follow it again with: distqctl watch " + strings.Join(ids, " ")}
		case err != nil && transient(err):
			if failingFor.IsZero() {
				failingFor = time.Now()
			}
			if time.Since(failingFor) > unreachableGrace {
				return nil, err
			}
			if disp != nil {
				disp.warn(err)
			} else if mode != progressNone {
				fmt.Fprintf(a.stderr, "waiting for the server: %v\n", err)
			}
		case err != nil:
			return nil, err
		default:
			failingFor = time.Time{}
			now := time.Now()
			rate.add(now, s.Done)
			if disp == nil {
				disp = newDisplay(mode, a.stderr, s.Total, ids)
			}
			disp.update(now, s, rate)
			if s.Done == s.Total {
				disp.close()
				disp = nil
				return a.result(ctx, c, ids, s, time.Since(start), lineOf)
			}
			if s.etag != "" && len(ids) == 1 {
				lp = &longPoll{wait: 30 * time.Second, etag: s.etag}
				if mode == progressLines {
					lp.wait = linesEvery
				}
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil, &interruptedError{Hint: "the server goes on; follow it again with: distqctl watch " + strings.Join(ids, " ")}
		case <-time.After(o.interval):
		}
	}
}

// transient reports whether err may pass: the server unreachable or
// unavailable for a moment.
func transient(err error) bool {
	var ue *unreachableError
	var ae *APIError
	return errors.As(err, &ue) || errors.As(err, &ae) && ae.Unavailable()
}

// result builds the end of a watch, listing the failures.
func (a *app) result(ctx context.Context, c *client, ids []string, s snapshot, elapsed time.Duration, lineOf map[string]int) (*watchResult, error) {
	res := &watchResult{IDs: ids, Total: s.Total, Counts: s.Counts, Elapsed: elapsed.Seconds(), Failures: []failure{}, FailuresListed: true}
	add := func(d distribution.Distribution) bool {
		if len(res.Failures) >= maxFailuresShown {
			res.FailuresListed = false
			return false
		}
		f := failure{Line: lineOf[d.ID], ID: d.ID, BatchID: d.BatchID, ProductKey: d.ProductKey, Code: "unknown", Message: "no error recorded"}
		if d.Error != nil {
			f.Code, f.Message, f.RequestID = d.Error.Code, d.Error.Message, d.Error.RequestID
		}
		res.Failures = append(res.Failures, f)
		return true
	}
	if s.Counts[distribution.StateFailed] == 0 {
		return res, nil
	}
	for _, id := range ids {
		if strings.HasPrefix(id, "d_") {
			var d distribution.Distribution
			if err := c.getJSON(ctx, "/v1/distributions/"+url.PathEscape(id), &d); err != nil {
				return nil, err
			}
			if d.State == distribution.StateFailed {
				add(d)
			}
			continue
		}
		err := c.list(ctx, listQuery{BatchID: id, State: string(distribution.StateFailed), PageSize: 1000}, func(ds []distribution.Distribution) bool {
			for _, d := range ds {
				if !add(d) {
					return false
				}
			}
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("list the failures of %s: %w", id, err)
		}
	}
	slices.SortStableFunc(res.Failures, func(x, y failure) int {
		return cmp.Or(x.Line-y.Line, strings.Compare(x.ID, y.ID))
	})
	return res, nil
}

// printWatchSummary prints the end of a watch as text.
func (a *app) printWatchSummary(r *watchResult) {
	w := a.stdout
	fmt.Fprintf(w, "finished %s in %s: %s\n", plural(r.Total, "item"), time.Duration(r.Elapsed*float64(time.Second)).Round(100*time.Millisecond), countsText(r.Counts, true))
	failed := r.Counts[distribution.StateFailed]
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
func countsText(counts map[distribution.State]int, finalOnly bool) string {
	order := []distribution.State{distribution.StateSucceeded, distribution.StateFailed, distribution.StateCanceled,
		distribution.StateRunning, distribution.StateSubmitting, distribution.StateQueued}
	var parts []string
	for _, st := range order {
		n := counts[st]
		always := st == distribution.StateSucceeded || !finalOnly && st == distribution.StateFailed
		if n == 0 && !always {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %d", st, n))
	}
	return strings.Join(parts, " · ")
}

// rateMeter measures how fast items finish over a recent window.
type rateMeter struct {
	window  time.Duration
	samples []rateSample
}

type rateSample struct {
	at   time.Time
	done int
}

func newRateMeter(window time.Duration) *rateMeter { return &rateMeter{window: window} }

func (m *rateMeter) add(at time.Time, done int) {
	m.samples = append(m.samples, rateSample{at, done})
	for len(m.samples) > 2 && at.Sub(m.samples[1].at) >= m.window {
		m.samples = m.samples[1:]
	}
}

// perSecond is the finishing rate in items per second, or 0 while unknown.
func (m *rateMeter) perSecond() float64 {
	if len(m.samples) < 2 {
		return 0
	}
	first, last := m.samples[0], m.samples[len(m.samples)-1]
	span := last.at.Sub(first.at).Seconds()
	if span < 0.5 {
		return 0
	}
	return float64(last.done-first.done) / span
}

// eta is the time left at the current rate, else from the server's ETA;
// -1 when unknown.
func eta(now time.Time, s snapshot, m *rateMeter) time.Duration {
	left := s.Total - s.Done
	if left == 0 {
		return 0
	}
	if r := m.perSecond(); r > 0 {
		return time.Duration(float64(left) / r * float64(time.Second))
	}
	if !s.ServerETA.IsZero() {
		return max(s.ServerETA.Sub(now), 0)
	}
	return -1
}

func etaText(d time.Duration) string {
	if d < 0 {
		return "eta ?"
	}
	return "eta " + d.Round(time.Second).String()
}

// display shows progress while following.
type display interface {
	update(now time.Time, s snapshot, m *rateMeter)
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

func (nopDisplay) update(time.Time, snapshot, *rateMeter) {}
func (nopDisplay) warn(error)                             {}
func (nopDisplay) close()                                 {}

// linesDisplay prints a plain line every linesEvery and at the end.
type linesDisplay struct {
	w    io.Writer
	what string
	last time.Time
}

func (d *linesDisplay) update(now time.Time, s snapshot, m *rateMeter) {
	if now.Sub(d.last) < linesEvery && s.Done < s.Total {
		return
	}
	d.last = now
	pct := 100
	if s.Total > 0 {
		pct = 100 * s.Done / s.Total
	}
	fmt.Fprintf(d.w, "%s %d/%d done (%d%%) · %s · %.1f/s · %s\n",
		now.Format("15:04:05"), s.Done, s.Total, pct, countsText(s.Counts, false), m.perSecond(), etaText(eta(now, s, m)))
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
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionUseANSICodes(true),
	)
	return &barDisplay{w: w, bar: bar}
}

func (d *barDisplay) update(now time.Time, s snapshot, m *rateMeter) {
	d.bar.Describe(fmt.Sprintf("%.1f/s %s · %s", m.perSecond(), etaText(eta(now, s, m)), countsText(s.Counts, false)))
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
