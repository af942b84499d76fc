package queue

import (
	"context"
	"sync"
	"time"
)

// pollDelay is how long to wait before the next Query of a job that has
// run for elapsed, when the account's recent jobs took estimate (0 when
// unknown). Polls are sparse while the job is far from its expected end
// and dense (base apart) around it, so a job costs about the same few
// Queries, and the same few trips through the queue, however long it runs
// (the Redis bill of a distribution does not grow with its job). A job past
// its expected end, or of an account without an estimate, is asked again
// after a quarter of the time it has run: a finish is seen at most 25% late
// and after O(log duration) Queries. No wait is shorter than base or longer
// than maxGap.
func pollDelay(elapsed, estimate, base, maxGap time.Duration) time.Duration {
	var d time.Duration
	switch {
	case estimate > 0 && elapsed < estimate-base:
		d = estimate - base - elapsed // wake just before the expected end
	case estimate > 0 && elapsed < estimate+4*base:
		d = base // around the expected end
	default:
		d = elapsed / 4
	}
	return min(max(d, base), max(maxGap, base))
}

// durations caches the accounts' recent job durations (store.JobDuration)
// for a few seconds, so a poll costs no read of it.
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
	if ok && time.Since(v.at) < durationCacheTTL {
		return v.d
	}
	d, err := read(ctx, uid)
	if err != nil {
		return v.d // the last known, or unknown
	}
	c.mu.Lock()
	if c.byID == nil {
		c.byID = map[string]cachedDuration{}
	}
	c.byID[uid] = cachedDuration{d: d, at: time.Now()}
	c.mu.Unlock()
	return d
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
