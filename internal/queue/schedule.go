package queue

import (
	"context"
	"sync"
	"time"
)

// pollDelay is how long to wait before the next Query of a job that has
// run for elapsed, when the account's recent jobs took estimate (0 when
// unknown). A job with an estimate is asked once half a base before its
// expected end (a job that ends sooner than the estimate shows it there,
// and the estimate learns it: aimed only after the end, polls would never
// see an estimate that is too long), then just after it (base/8 past); a
// job found still running is asked again every base/4 for one base, then
// every base for three more, then at gaps of half the time it has run past
// its expected end. So a job costs about the same few Queries however long
// it runs (the Redis bill of a distribution does not grow with its job)
// and, with durations that repeat, its finish is seen within about base/8,
// within base/4 when it runs up to base longer than the estimate, and
// within half its overrun beyond that. A job of an account without an
// estimate is asked again after an eighth of the time it has run: a
// finish is seen at most 12.5% late and after O(log duration) Queries. No
// wait is longer than maxGap, and none shorter than base except around
// the expected end.
func pollDelay(elapsed, estimate, base, maxGap time.Duration) time.Duration {
	maxGap = max(maxGap, base)
	switch {
	case estimate > base && elapsed < estimate-base/2-base/4:
		return min(estimate-base/2-elapsed, maxGap) // the probe before the expected end
	case estimate > 0 && elapsed < estimate:
		// Just after the expected end (a Query less than base/4 before the
		// probe's time stands for the probe).
		return min(estimate+base/8-elapsed, maxGap)
	case estimate > 0 && elapsed < estimate+base/2:
		return base / 8 // a little late: it likely ends now
	case estimate > 0 && elapsed < estimate+base:
		return base / 4
	case estimate > 0 && elapsed < estimate+4*base:
		return base // around the expected end
	case estimate > 0:
		return min(max((elapsed-estimate)/2, base), maxGap) // overrun: geometric from the expected end
	default:
		return min(max(elapsed/8, base), maxGap)
	}
}

// durations caches the accounts' recent job durations (store.JobDuration)
// for a few seconds, so a poll costs no read of it. An unknown duration is
// read again at every poll (the first job's end, in any worker, makes it
// known, and the jobs still running aim at it from their next poll on);
// this worker's own observations update it at once.
type durations struct {
	mu   sync.Mutex
	byID map[string]cachedDuration
}

type cachedDuration struct {
	d  time.Duration
	at time.Time
}

const durationCacheTTL = 10 * time.Second

func (c *durations) get(ctx context.Context, uid string, read func(context.Context, string) (time.Duration, error)) time.Duration {
	c.mu.Lock()
	v, ok := c.byID[uid]
	c.mu.Unlock()
	if ok && v.d > 0 && time.Since(v.at) < durationCacheTTL {
		return v.d
	}
	d, err := read(ctx, uid)
	if err != nil {
		return v.d // the last known, or unknown
	}
	c.set(uid, d)
	return d
}

// set caches d as the account's duration.
func (c *durations) set(uid string, d time.Duration) {
	c.mu.Lock()
	if c.byID == nil {
		c.byID = map[string]cachedDuration{}
	}
	c.byID[uid] = cachedDuration{d: d, at: time.Now()}
	c.mu.Unlock()
}

// nextPoll is the delay before the next Query of the job of a distribution
// submitted at submitted (nil: just now) of account a.
func (w *Worker) nextPoll(ctx context.Context, a *Account, submitted *time.Time) time.Duration {
	elapsed := time.Duration(0)
	if submitted != nil {
		elapsed = w.now().Sub(*submitted)
	}
	est := w.durations.get(ctx, a.UID, w.store.JobDuration)
	return pollDelay(elapsed, est, w.opts.PollInterval, w.opts.MaxPollGap)
}
