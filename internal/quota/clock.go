package quota

import "time"

// clockWindow is how long a clock sample bounds the offset between the
// Redis server's clock and this process's: long enough to hold a few fast
// round trips, short enough that clock drift (tens of ppm) stays far below
// a millisecond within it.
const clockWindow = 5 * time.Second

// clockSamples bounds the samples kept per account.
const clockSamples = 32

// clockSample bounds the offset (server µs − local monotonic µs) by one
// round trip: the server read its clock after start and before end.
type clockSample struct {
	lo, hi int64
	at     time.Time
}

// offset bounds the offset between the clock of the Redis server that holds
// uid's keys and this process's monotonic clock, from a round trip that
// started at start, ended at end, and read the server clock at server (µs).
// Every round trip bounds it to its own length; the recent ones together
// bound it to about the fastest's, so a grant's local instant is known to
// within a fraction of a millisecond even when this round trip was slow
// (a CPU hog delays the reply, not the server's clock). If the recent
// samples disagree (the server's clock was set), only this one counts.
func (l *Limiter) offset(uid string, start, end time.Time, server int64) (lo, hi int64) {
	lo, hi = server-end.Sub(l.base).Microseconds(), server-start.Sub(l.base).Microseconds()
	l.mu.Lock()
	defer l.mu.Unlock()
	xs := l.clocks[uid]
	keep := xs[:0]
	for _, x := range xs[max(len(xs)-clockSamples+1, 0):] {
		if end.Sub(x.at) <= clockWindow {
			keep = append(keep, x)
		}
	}
	keep = append(keep, clockSample{lo, hi, end})
	blo, bhi := lo, hi
	for _, x := range keep {
		blo, bhi = max(blo, x.lo), min(bhi, x.hi)
	}
	if blo > bhi {
		keep = append(keep[:0], clockSample{lo, hi, end})
		blo, bhi = lo, hi
	}
	l.clocks[uid] = keep
	return blo, bhi
}

// localOf returns the earliest and the latest local instants that server
// time at (µs) may be, given offset bounds lo, hi.
func (l *Limiter) localOf(at, lo, hi int64) (earliest, latest time.Time) {
	return l.base.Add(fromMicros(at - hi)), l.base.Add(fromMicros(at - lo))
}
