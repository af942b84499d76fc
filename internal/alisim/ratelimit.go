package alisim

import (
	"math"
	"slices"
	"time"
)

// limiter enforces a per (account UID, action) limit of n accepted calls in
// any sliding window (t-span, t]. Not safe for concurrent use: the Server
// guards it.
type limiter struct {
	windows map[limitKey]*window
}

type limitKey struct{ uid, action string }

type window struct {
	accepted []time.Time // ascending
	latest   time.Time
}

// limitFor turns a rate in calls per second into n calls per span:
// n = max(1, floor(rate)), span = n/rate seconds (1 s for integer rates).
func limitFor(rate float64) (int, time.Duration) {
	n := max(1, int(math.Floor(rate)))
	return n, time.Duration(float64(n) / rate * float64(time.Second))
}

// allow reports whether a call arriving at t is accepted, and records it if
// so. A call is refused when a window of length span that contains t
// already holds n accepted calls: for calls checked in arrival order that is
// exactly "the window before its arrival holds n accepted calls"; calls
// checked slightly out of order can never make any window exceed n.
func (l *limiter) allow(uid, action string, rate float64, t time.Time) bool {
	if l.windows == nil {
		l.windows = map[limitKey]*window{}
	}
	k := limitKey{uid, action}
	w := l.windows[k]
	if w == nil {
		w = &window{}
		l.windows[k] = w
	}
	n, span := limitFor(rate)
	if t.After(w.latest) {
		w.latest = t
	}
	// Drop what can no longer share a window with any future call.
	cut := 0
	for cut < len(w.accepted) && !w.accepted[cut].After(w.latest.Add(-2*span)) {
		cut++
	}
	w.accepted = w.accepted[cut:]

	pos, _ := slices.BinarySearchFunc(w.accepted, t, func(a, b time.Time) int { return a.Compare(b) })
	candidate := slices.Insert(slices.Clone(w.accepted), pos, t)
	// Only windows (x-span, x] with t <= x < t+span contain t; the fullest
	// of them ends at an accepted call (or at t itself).
	for i := pos; i < len(candidate) && candidate[i].Before(t.Add(span)); i++ {
		x := candidate[i]
		lo := x.Add(-span)
		count := 0
		for j := i; j >= 0 && candidate[j].After(lo); j-- {
			count++
		}
		if count > n {
			return false
		}
	}
	w.accepted = candidate
	return true
}
