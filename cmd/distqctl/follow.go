package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/distq/distq/client"
)

// unreachableGrace is how long watch keeps polling through an unreachable
// or unavailable server before it gives up.
const unreachableGrace = 30 * time.Second

// maxFailuresShown bounds the failures listed in a summary.
const maxFailuresShown = 50

// snapshot is the state of the followed work at one moment.
type snapshot struct {
	Counts map[client.State]int
	Total  int
	Done   int
	// Created is when the earliest of the followed batches (or
	// distributions) was created: elapsed times count from it, not from
	// the start of the watch.
	Created time.Time
	// ServerETA is the latest ETA the API gave (zero if none).
	ServerETA time.Time
	// revision names the counts of a lone batch (its ETag), for the next
	// long poll.
	revision string
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
	IDs    []string             `json:"ids"`
	Total  int                  `json:"total"`
	Counts map[client.State]int `json:"counts"`
	// Created is when the work was created; Elapsed counts from it.
	Created  time.Time `json:"created_at"`
	Elapsed  float64   `json:"elapsed_seconds"`
	Failures []failure `json:"failures"`
	// FailuresListed is false when the failures were too many to list.
	FailuresListed bool `json:"failures_listed"`
}

func (r *watchResult) allSucceeded() bool {
	return r.Counts[client.StateSucceeded] == r.Total
}

// poll reads the state of every id. Given a lone batch and the revision
// of its last answer, it long-polls that batch for up to wait: the server
// answers as soon as the batch's counts change.
func poll(ctx context.Context, c *client.Client, ids []string, revision string, wait time.Duration) (snapshot, error) {
	s := snapshot{Counts: map[client.State]int{}}
	for _, id := range ids {
		if strings.HasPrefix(id, "d_") {
			d, err := c.Get(ctx, id)
			if err != nil {
				return s, apiError(err)
			}
			s.Counts[d.State]++
			s.created(d.CreatedAt)
			continue
		}
		if len(ids) > 1 {
			revision = ""
		}
		b, rev, err := c.PollBatch(ctx, id, revision, wait)
		if err != nil {
			return s, apiError(err)
		}
		s.revision = rev
		for st, n := range b.Counts {
			s.Counts[st] += n
		}
		s.created(b.CreatedAt)
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
func (a *app) follow(ctx context.Context, c *client.Client, ids []string, o *watchOptions, lineOf map[string]int) (*watchResult, error) {
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
	var (
		revision string
		lastPoll time.Time
	)
	longWait := 30 * time.Second
	if mode == progressLines {
		longWait = linesEvery
	}
	for {
		if revision != "" {
			select {
			case <-ctx.Done():
			case <-time.After(time.Until(lastPoll.Add(o.interval))):
			}
		}
		lastPoll = time.Now()
		var err error
		s, err = poll(ctx, c, ids, revision, longWait)
		revision = ""
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
			disp.update(now, s, rate, s.elapsed(now, start))
			if s.Done == s.Total {
				disp.close()
				disp = nil
				return a.result(ctx, c, ids, s, s.elapsed(now, start), lineOf)
			}
			if s.revision != "" && len(ids) == 1 {
				revision = s.revision
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
	var ae *client.Error
	return errors.As(err, &ue) || errors.As(err, &ae) && ae.Unavailable()
}

// eachFailed hands visit every failed distribution among ids (distribution
// ids, and batch ids whose failed items it lists) until visit returns false.
func eachFailed(ctx context.Context, c *client.Client, ids []string, visit func(client.Distribution) bool) error {
	for _, id := range ids {
		if strings.HasPrefix(id, "d_") {
			d, err := c.Get(ctx, id)
			if err != nil {
				return apiError(err)
			}
			if d.State == client.StateFailed && !visit(*d) {
				return nil
			}
			continue
		}
		for d, err := range c.All(ctx, client.ListOptions{BatchID: id, State: client.StateFailed, Limit: 1000}) {
			if err != nil {
				return fmt.Errorf("list the failures of %s: %w", id, apiError(err))
			}
			if !visit(d) {
				return nil
			}
		}
	}
	return nil
}

// result builds the end of a watch, listing the failures.
func (a *app) result(ctx context.Context, c *client.Client, ids []string, s snapshot, elapsed time.Duration, lineOf map[string]int) (*watchResult, error) {
	res := &watchResult{IDs: ids, Total: s.Total, Counts: s.Counts, Created: s.Created, Elapsed: elapsed.Seconds(), Failures: []failure{}, FailuresListed: true}
	add := func(d client.Distribution) bool {
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
	if s.Counts[client.StateFailed] == 0 {
		return res, nil
	}
	if err := eachFailed(ctx, c, ids, add); err != nil {
		return nil, err
	}
	slices.SortStableFunc(res.Failures, func(x, y failure) int {
		return cmp.Or(x.Line-y.Line, strings.Compare(x.ID, y.ID))
	})
	return res, nil
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

// created keeps the earliest creation time.
func (s *snapshot) created(t time.Time) {
	if s.Created.IsZero() || t.Before(s.Created) {
		s.Created = t
	}
}

// elapsed is the time since the followed work was created, or since start
// when that is unknown.
func (s snapshot) elapsed(now, start time.Time) time.Duration {
	if s.Created.IsZero() || s.Created.After(now) {
		return now.Sub(start)
	}
	return now.Sub(s.Created)
}
