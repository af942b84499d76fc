package quota

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"
)

// seriesKey names the latency samples of one (account, action).
type seriesKey struct{ uid, action string }

// sample is one observation, stamped with the local (monotonic) clock.
type sample struct {
	at time.Time
	d  time.Duration
}

// series holds this process's recent samples of one (account, action):
// call latencies and Wait's lateness, each in arrival order, and what was
// last published of them.
type series struct {
	lat, late []sample
	// send is set once late holds delays before the send (ObserveSend)
	// rather than Wait's lateness: their quantile is SendQuantile.
	send bool

	published bool
	pub       estimate
	pubAt     time.Time
}

// estimate summarises this process's samples of one (account, action); it
// is published as one entry of the shared hash, and the margin is computed
// from all live entries (see ObserveLatency).
type estimate struct {
	lo   time.Duration // smallest latency
	hi   time.Duration // LatencyQuantile of the latencies
	late time.Duration // LatencyQuantile of Wait's lateness, 0 without samples
	n    int           // latency samples
}

// ObserveLatency reports one call of action for uid that reached the endpoint
// (any answer from it, Throttling included), taking d from the grant to the
// response: measure from the moment Wait returns (or from the grant, when
// sleeping on Reserve yourself) to the response. Calls that never reached the
// endpoint (refused connections, DNS failures) must not be reported, since
// their short durations would understate the minimum.
//
// # The margin estimator
//
// A grant g_k for call k arrives at the endpoint at g_k + a_k, where a_k is
// the delay from grant to arrival (waking up, the request's trip, injected
// jitter). Reserve keeps any N+1 grants at least 1 s + margin apart, so the
// endpoint sees N+1 calls inside 1 s only if a_i - a_j > margin for some
// earlier i and later j: the margin must cover the spread of a (its maximum
// minus its minimum), not its size. A steady 300 ms delay needs no margin;
// 0–50 ms of jitter needs 50 ms.
//
// a itself is not observable, but d = a + (time from arrival to response),
// and the return leg varies less than it adds, so the spread of d bounds the
// spread of a from above. Each process keeps, per (uid, action), its last
// LatencyWindow samples no older than LatencyMaxAge, and publishes in a Redis
// hash, under its ID and for MarginTTL:
//
//	lo = min(d), hi = q(d), late = q(lateness), n = number of samples
//
// where q is the LatencyQuantile (0.99; the maximum below 100 samples) and
// lateness is how much later than planned Wait returned (Redis round trip,
// timer delay), which d does not see. Every Reserve then computes, inside its
// script, over the live entries of all processes, with K = Σn:
//
//	margin = (max(hi) - min(lo)) × (K+1)/(K-1) + max(late)
//
// clamped to [MinMargin, MaxMargin]; with K < 2 it uses InitialMargin
// (default 50 ms), and below MinSamples (20) it is at least InitialMargin
// (from 10 samples on, or a 99% bound on the spread if that is less):
// the range of two or three samples can be any fraction of the real spread
// (two of 0–50 ms fall within 2 ms of each other 8% of the time, and a
// 3 ms range widened ×3 once let two calls 995 ms apart through). Pooling the processes' samples matters twice: the
// spread is taken across processes, which covers workers whose baseline
// delays differ (one beside the endpoint, one far away) where per-process
// spreads would see none; and K counts every process's samples. (K+1)/(K-1)
// is the unbiased correction of the range of K samples of a uniform
// distribution: a small sample understates the range (5 samples of 0–50 ms
// span 33 ms on average), so early estimates are widened, and the widening
// fades (×1.06 at 36 samples, ×1.01 at 200).
//
// A process republishes when its entry changed (by 0.5 ms, or its sample
// count by a tenth) or a quarter of MarginTTL passed; an entry not refreshed
// for MarginTTL stops counting, and samples age out after LatencyMaxAge, so a
// slow episode or a dead process does not hold the margin high forever.
//
// Results (tests, and 3 processes against the simulator): constant 1 ms
// latencies give MinMargin (5 ms), 99.5% of the rate; uniform 0–50 ms gives
// about 50–53 ms, 95% of the rate, with no throttled call.
//
// ObserveLatency is best effort and returns no error: when Redis cannot be
// reached the estimate is published at a later observation. Safe for
// concurrent use.
func (l *Limiter) ObserveLatency(ctx context.Context, uid, action string, d time.Duration) {
	if checkUID(uid) != nil || checkAction(action) != nil || d < 0 {
		return
	}
	now := time.Now()
	l.mu.Lock()
	s := l.seriesOf(uid, action)
	s.lat = l.push(s.lat, sample{now, d}, now)
	e := l.estimate(s, now)
	publish := !s.published || now.Sub(s.pubAt) >= l.opts.MarginTTL/4 || changed(s.pub, e)
	if publish {
		s.published, s.pub, s.pubAt = true, e, now
	}
	l.mu.Unlock()
	if !publish {
		return
	}
	err := observeScript.Run(ctx, l.rdb, []string{key(uid, kindMargin, action)},
		l.opts.ID, micros(e.lo), micros(e.hi), micros(e.late), e.n, micros(l.opts.MarginTTL)).Err()
	if err != nil {
		// Publish again at the next observation.
		l.mu.Lock()
		s.published = false
		l.mu.Unlock()
	}
}

// changed reports whether e differs enough from the published p to publish it.
func changed(p, e estimate) bool {
	const tol = time.Millisecond / 2
	return absDiff(p.lo, e.lo) >= tol || absDiff(p.hi, e.hi) >= tol || absDiff(p.late, e.late) >= tol ||
		10*absDiff(time.Duration(p.n), time.Duration(e.n)) >= time.Duration(max(p.n, 1))
}

// Margin returns the safety margin the next Reserve of action for uid would
// use: the shared estimate described at ObserveLatency, clamped to
// [MinMargin, MaxMargin], or InitialMargin when no process has a live one.
// Safe for concurrent use.
func (l *Limiter) Margin(ctx context.Context, uid, action string) (time.Duration, error) {
	if err := checkUID(uid); err != nil {
		return 0, fmt.Errorf("margin: %w", err)
	}
	if err := checkAction(action); err != nil {
		return 0, fmt.Errorf("margin: %w", err)
	}
	o := l.opts
	us, err := marginScript.Run(ctx, l.rdb, []string{key(uid, kindMargin, action)},
		micros(o.MinMargin), micros(o.MaxMargin), micros(o.InitialMargin), o.MinSamples).Int64()
	if err != nil {
		return 0, fmt.Errorf("margin of %s for %s: %w", action, uid, err)
	}
	return fromMicros(us), nil
}

// observeLateness records how much later than planned Wait returned.
func (l *Limiter) observeLateness(uid, action string, d time.Duration) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.seriesOf(uid, action)
	s.late = l.push(s.late, sample{now, max(d, 0)}, now)
}

// seriesOf returns the series of (uid, action), creating it. l.mu is held.
func (l *Limiter) seriesOf(uid, action string) *series {
	k := seriesKey{uid, action}
	s := l.series[k]
	if s == nil {
		s = &series{}
		l.series[k] = s
	}
	return s
}

// push appends x and drops samples past the window's length or age.
func (l *Limiter) push(xs []sample, x sample, now time.Time) []sample {
	xs = append(xs, x)
	return l.prune(xs, now)
}

// prune drops the samples past the window's length or age; xs is in arrival order.
func (l *Limiter) prune(xs []sample, now time.Time) []sample {
	cut := max(len(xs)-l.opts.LatencyWindow, 0)
	for cut < len(xs) && now.Sub(xs[cut].at) > l.opts.LatencyMaxAge {
		cut++
	}
	if cut == 0 {
		return xs
	}
	return slices.Delete(xs, 0, cut)
}

// estimate summarises the live samples of s. l.mu is held.
func (l *Limiter) estimate(s *series, now time.Time) estimate {
	s.lat = l.prune(s.lat, now)
	s.late = l.prune(s.late, now)
	if len(s.lat) == 0 {
		return estimate{}
	}
	q := l.opts.LatencyQuantile
	ds := durations(s.lat)
	// A sample far above the bulk is most likely this process stalled while
	// the answer came back (a CPU hog delays the read, not the request),
	// not a call that arrived late: the high end is taken among the samples
	// within twice the 0.9-quantile's distance from the minimum. A bounded
	// spread (0–50 ms jitter) loses nothing to the fence; one stall of a
	// small sample no longer sets the margin for LatencyMaxAge; stalls as
	// frequent as a tenth of the calls are the spread, and count.
	fence := ds[0] + 2*(quantile(ds, 0.9)-ds[0])
	kept := ds[:sort.Search(len(ds), func(i int) bool { return ds[i] > fence })]
	e := estimate{lo: ds[0], hi: quantile(kept, q), n: len(ds)}
	if len(s.late) > 0 {
		if s.send {
			e.late = max(quantile(durations(s.late), l.opts.SendQuantile), l.opts.MinMargin)
		} else {
			e.late = quantile(durations(s.late), q)
		}
	}
	return e
}

// durations returns the sorted durations of xs.
func durations(xs []sample) []time.Duration {
	ds := make([]time.Duration, len(xs))
	for i, x := range xs {
		ds[i] = x.d
	}
	slices.Sort(ds)
	return ds
}

// quantile returns the q-quantile of sorted, non-empty ds: the smallest value
// with at least q of the samples at or below it.
func quantile(ds []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(ds)))) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func absDiff(a, b time.Duration) time.Duration {
	if a > b {
		return a - b
	}
	return b - a
}
