package quota

import (
	"context"
	"fmt"
	"math"
	"slices"
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
// call latencies and Wait's lateness, each in arrival order.
type series struct {
	lat, late []sample

	published    bool
	pubLo, pubHi time.Duration
	pubAt        time.Time
}

// estimate is this process's view of the arrival delays: lo is the smallest
// recent latency, hi a high quantile inflated for a small sample plus Wait's
// lateness. The margin is max(hi) - min(lo) over all processes.
type estimate struct {
	lo, hi time.Duration
	ok     bool
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
// minus its minimum), not its size. A constant 300 ms delay needs no margin;
// 0–50 ms of jitter needs 50 ms.
//
// a itself is not observable, but d = a + (time from arrival to response),
// and the return leg varies less than it adds, so the spread of d bounds the
// spread of a from above. Each process keeps, per (uid, action), the last
// LatencyWindow samples no older than LatencyMaxAge, and computes
//
//	lo = min(d)
//	hi = lo + (q(d) - lo) × (k+1)/(k-1) + q(lateness)
//
// where q is the LatencyQuantile (0.99) of the k samples (the maximum for
// k < 100) and lateness is how much later than planned Wait returned, which d
// does not see. (k+1)/(k-1) is the unbiased correction of the sample range
// of a uniform distribution: a small sample understates the range (5 samples
// of 0–50 ms span 33 ms on average), so early estimates are widened, and the
// widening fades (×1.01 at 200 samples). No estimate is made from fewer than
// 2 samples.
//
// The process publishes (lo, hi) in a Redis hash under its ID, with an
// expiry of MarginTTL, refreshed when it changes or a quarter of MarginTTL
// has passed. Every Reserve computes, in its script, margin = max(hi) -
// min(lo) over the live entries of all processes, clamped to [MinMargin,
// MaxMargin]; with no live entry it uses InitialMargin. Taking the spread
// across processes covers workers whose baseline delays differ (one next to
// the endpoint, one far away), which per-process spreads would miss. A
// process that stops observing stops counting after MarginTTL, and its own
// samples age out after LatencyMaxAge, so one slow episode does not hold the
// margin high forever.
//
// Examples (from the tests): constant 1 ms latencies give MinMargin (5 ms),
// 99.5% of the rate; uniform 0–50 ms gives about 50 ms, 95% of the rate.
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
	publish := e.ok && (!s.published || now.Sub(s.pubAt) >= l.opts.MarginTTL/4 ||
		absDiff(e.lo, s.pubLo) >= time.Millisecond/2 || absDiff(e.hi, s.pubHi) >= time.Millisecond/2)
	if publish {
		s.published, s.pubLo, s.pubHi, s.pubAt = true, e.lo, e.hi, now
	}
	l.mu.Unlock()
	if !publish {
		return
	}
	err := observeScript.Run(ctx, l.rdb, []string{key(uid, kindMargin, action)},
		l.opts.ID, micros(e.lo), micros(e.hi), micros(l.opts.MarginTTL)).Err()
	if err != nil {
		// Publish again at the next observation.
		l.mu.Lock()
		s.published = false
		l.mu.Unlock()
	}
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
		micros(o.MinMargin), micros(o.MaxMargin), micros(o.InitialMargin)).Int64()
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

// estimate computes this process's (lo, hi) for s. l.mu is held.
func (l *Limiter) estimate(s *series, now time.Time) estimate {
	s.lat = l.prune(s.lat, now)
	s.late = l.prune(s.late, now)
	k := len(s.lat)
	if k < 2 {
		return estimate{}
	}
	q := l.opts.LatencyQuantile
	ds := durations(s.lat)
	lo := ds[0]
	spread := float64(quantile(ds, q) - lo)
	spread *= float64(k+1) / float64(k-1)
	hi := lo + time.Duration(math.Ceil(spread))
	if len(s.late) > 0 {
		hi += quantile(durations(s.late), q)
	}
	return estimate{lo: lo, hi: hi, ok: true}
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
