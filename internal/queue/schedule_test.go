package queue

import (
	"testing"
	"time"
)

// The poll schedule: sparse far from the expected end, dense around it,
// geometric without an estimate or past it, within [base, maxGap].
func TestPollDelay(t *testing.T) {
	t.Parallel()
	s := time.Second
	for _, tc := range []struct {
		elapsed, estimate, want time.Duration
	}{
		{0, 10 * s, 9500 * time.Millisecond},                      // a probe half a base before the expected end
		{9 * s, 10 * s, 500 * time.Millisecond},                   //
		{9300 * time.Millisecond, 10 * s, 825 * time.Millisecond}, // a Query near the probe's time stands for it
		{9500 * time.Millisecond, 10 * s, 625 * time.Millisecond}, // then just after it
		{9950 * time.Millisecond, 10 * s, 175 * time.Millisecond},
		{10125 * time.Millisecond, 10 * s, s / 8}, // found running just after: every base/8
		{10400 * time.Millisecond, 10 * s, s / 8},
		{10500 * time.Millisecond, 10 * s, s / 4}, // then every base/4
		{10900 * time.Millisecond, 10 * s, s / 4},
		{11 * s, 10 * s, s},     // then every base
		{13 * s, 10 * s, s},     // still dense, a little past it
		{14 * s, 10 * s, 2 * s}, // overdue: half its overrun
		{30 * s, 10 * s, 10 * s},
		{0, 300 * s, 60 * s}, // never more than maxGap
		{0, 0, s},            // unknown: base, then geometric
		{3 * s, 0, s},
		{20 * s, 0, 2500 * time.Millisecond},
		{0, 600 * time.Millisecond, 725 * time.Millisecond}, // short jobs: no probe, just after their end
	} {
		if got := pollDelay(tc.elapsed, tc.estimate, s, 60*s); got != tc.want {
			t.Errorf("pollDelay(%v, estimate %v) = %v, want %v", tc.elapsed, tc.estimate, got, tc.want)
		}
	}
}

// How many Queries a job costs, with the estimate right: about the same
// for a 1 s, a 10 s and a 60 s job, and O(log) without an estimate.
func TestPollCountIndependentOfDuration(t *testing.T) {
	t.Parallel()
	base, gap := time.Second, time.Minute
	count := func(dur, est time.Duration) (n int, late time.Duration) {
		at := time.Duration(0)
		for {
			at += pollDelay(at, est, base, gap)
			n++
			if at >= dur {
				return n, at - dur
			}
		}
	}
	for _, dur := range []time.Duration{time.Second, 10 * time.Second, 60 * time.Second, 5 * time.Minute} {
		n, late := count(dur, dur)
		if n > 3+int(dur/gap) || late > base/8 {
			t.Errorf("%v job, estimate right: %d Queries, seen %v late; want ≤ %d and ≤ %v", dur, n, late, 3+int(dur/gap), base/8)
		}
		n, late = count(dur, dur-base/2) // estimate half a base short
		if n > 5+int(dur/gap) || late > base/4 {
			t.Errorf("%v job, estimate %v short: %d Queries, seen %v late; want ≤ %d and ≤ %v", dur, base/2, n, late, 5+int(dur/gap), base/4)
		}
		n, late = count(dur, dur-10*base) // estimate 10 bases short: seen within half the overrun
		if dur > 20*base && (late > 5*base || n > 12+int(dur/gap)) {
			t.Errorf("%v job, estimate %v short: %d Queries, seen %v late; want ≤ %d and ≤ %v", dur, 10*base, n, late, 12+int(dur/gap), 5*base)
		}
		n, late = count(dur, dur+3*base) // estimate 3 bases long: the probe sees it
		if dur > 4*base && (late > 3*base || n > 2+int(dur/gap)) {
			t.Errorf("%v job, estimate %v long: %d Queries, seen %v late; want ≤ %d and ≤ %v", dur, 3*base, n, late, 2+int(dur/gap), 3*base)
		}
		n, late = count(dur, 0)
		if n > 40 || late > dur/8+base {
			t.Errorf("%v job, no estimate: %d Queries, seen %v late; want ≤ 40 and ≤ an eighth", dur, n, late)
		}
	}
}

func TestDevicePollIDRoundTrip(t *testing.T) {
	for _, c := range []struct {
		id string
		n  int
	}{{"dd_01a2_x", 0}, {"dd_01a2_x", 12}, {"a:b", 3}} {
		p, ok := parseDevicePollID(devicePollID(c.id, c.n))
		if !ok || p.ID != c.id || p.Job != c.n {
			t.Errorf("parse(devicePollID(%q, %d)) = %+v, %v", c.id, c.n, p, ok)
		}
	}
	for _, bad := range []string{"poll:d_1", "devpoll:", "devpoll:x", "devpoll::1", "devpoll:x:-1", "devpoll:x:y"} {
		if p, ok := parseDevicePollID(bad); ok {
			t.Errorf("parse(%q) = %+v, want not ok", bad, p)
		}
	}
}
