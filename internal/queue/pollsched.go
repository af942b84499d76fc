package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The poll schedule. A running remote job is polled from a sorted set in
// Redis (store.SchedulePoll): member the poll's id, score when its next
// Query is due. Every worker runs one loop (RunPolls) that claims the polls
// due, leasing each for 15 s, renewed while its run lasts (a worker that
// dies mid-poll leaves it due again after the lease), runs them in goroutines, and writes each one's next due time
// back, or removes it when its job ended. A poll costs a claim (shared by
// the polls due together), its record read, the Query's grant and one
// write of the next due time: no queue round trip per Query, so what a
// distribution costs Redis does not grow with how long its job runs, and
// an idle worker reads the schedule once per PollIdleCheck. Polls used to
// be asynq tasks handed back to the queue after every Query (several
// scripts and a forwarder pass per Query).

// pollLoop is a worker's poll loop state.
type pollLoop struct {
	kick chan struct{}

	// saturated is set while the loop may have left due polls unclaimed
	// (it had no free run, or claimed as many as it had): a run that ends
	// then kicks the loop. Otherwise the loop's own timer is enough.
	saturated atomic.Bool

	mu      sync.Mutex
	wakeAt  time.Time            // when the loop looks next
	runs    map[string]int       // polls run here, by poll id
	fails   map[string]int       // consecutive failures, by poll id
	running map[string]time.Time // when a Query here last found the job running, by distribution id
}

// sawRunning notes that a Query asked at at found distribution id's job
// still running. (A job whose last poll runs in another worker leaves its
// entry here: entries a day old go when the map grows large.)
func (p *pollLoop) sawRunning(id string, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.running) >= maxRunningSeen {
		for k, t := range p.running {
			if at.Sub(t) > 24*time.Hour {
				delete(p.running, k)
			}
		}
	}
	p.running[id] = at
}

// maxRunningSeen is the size of pollLoop.running above which old entries
// are dropped.
const maxRunningSeen = 4096

// lastRunning returns, and forgets, when a Query here last found
// distribution id's job running.
func (p *pollLoop) lastRunning(id string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.running[id]
	delete(p.running, id)
	return at, ok
}

// schedulePoll schedules poll id (pollTaskID or devicePollID) in delay,
// unless it is scheduled already, and wakes this worker's loop if it would
// look later than that.
func (w *Worker) schedulePoll(ctx context.Context, id string, delay time.Duration) error {
	at := w.now().Add(delay)
	if _, err := w.store.SchedulePoll(ctx, id, at); err != nil {
		return err
	}
	w.pollDueAt(at)
	return nil
}

// pollDueAt wakes the poll loop when something is due at at, before it
// would look anyway.
func (w *Worker) pollDueAt(at time.Time) {
	w.polls.mu.Lock()
	sooner := w.polls.wakeAt.IsZero() || at.Before(w.polls.wakeAt)
	w.polls.mu.Unlock()
	if sooner {
		w.kickPolls()
	}
}

func (w *Worker) kickPolls() {
	select {
	case w.polls.kick <- struct{}{}:
	default:
	}
}

// pollRunLimit bounds one run of a poll.
func (w *Worker) pollRunLimit() time.Duration {
	return max(time.Minute, 4*w.opts.CallTimeout+w.opts.MaxRateWait)
}

// RunPolls runs this worker's poll loop until ctx ends, then waits for the
// polls it started (each bounded by the lease).
func (w *Worker) RunPolls(ctx context.Context) {
	sem := make(chan struct{}, w.opts.PollConcurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	runCtx := context.WithoutCancel(ctx)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-w.polls.kick:
		}
		now := w.now()
		wake := now.Add(w.opts.PollIdleCheck)
		free := cap(sem) - len(sem)
		w.polls.saturated.Store(free == 0)
		if free > 0 {
			ids, next, err := w.store.ClaimPolls(ctx, now, w.opts.PollLease, free)
			switch {
			case err != nil:
				if ctx.Err() != nil {
					return
				}
				w.log.Warn("claim polls", "err", err)
				wake = now.Add(time.Second)
			case len(ids) == free:
				// Perhaps more are due: look again when a run ends (it
				// kicks the loop).
				w.polls.saturated.Store(true)
			case !next.IsZero() && next.Before(wake):
				wake = next
			}
			for _, id := range ids {
				sem <- struct{}{}
				wg.Add(1)
				go func() {
					defer wg.Done()
					pctx, cancel := context.WithTimeout(runCtx, w.pollRunLimit())
					w.runPoll(pctx, id)
					cancel()
					<-sem
					if w.polls.saturated.Load() {
						w.kickPolls()
					}
				}()
			}
		}
		w.polls.mu.Lock()
		w.polls.wakeAt = wake
		w.polls.mu.Unlock()
		timer.Reset(max(wake.Sub(w.now()), time.Millisecond))
	}
}

// runPoll runs poll id once and writes what comes next: its next due time
// (a wait, or a back-off after a failure) or its removal (its job ended).
func (w *Worker) runPoll(ctx context.Context, id string) {
	w.polls.mu.Lock()
	run := w.polls.runs[id]
	w.polls.runs[id] = run + 1
	w.polls.mu.Unlock()
	err := w.pollOnceRenewing(ctx, id, run)
	var we *WaitError
	var next time.Duration
	switch {
	case err == nil:
		w.polls.mu.Lock()
		delete(w.polls.runs, id)
		delete(w.polls.fails, id)
		w.polls.mu.Unlock()
		if err := w.store.UnschedulePoll(ctx, id); err != nil {
			w.log.Warn("unschedule poll", "poll", id, "err", err) // runs again after the lease, and ends at once
		}
		return
	case errors.As(err, &we):
		w.polls.mu.Lock()
		delete(w.polls.fails, id)
		w.polls.mu.Unlock()
		next = we.Delay
	default:
		w.polls.mu.Lock()
		w.polls.fails[id]++
		n := w.polls.fails[id]
		w.polls.mu.Unlock()
		next = RetryDelay(n, err, nil)
		w.log.Warn("poll failed", "poll", id, "failures", n, "retry_in", next, "err", err)
	}
	at := w.now().Add(next)
	reschedule := w.store.ReschedulePoll
	if we != nil && !we.ranAt.IsZero() {
		reschedule = func(ctx context.Context, id string, at time.Time) error {
			return w.store.RescheduleRunningPoll(ctx, id, at, we.ranAt)
		}
	}
	if err := reschedule(ctx, id, at); err != nil {
		w.log.Warn("reschedule poll", "poll", id, "err", err) // due again after the lease
		return
	}
	w.pollDueAt(at)
}

// pollOnceRenewing runs pollOnce, renewing the poll's claim while the run
// lasts.
func (w *Worker) pollOnceRenewing(ctx context.Context, id string, run int) error {
	done := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(w.opts.PollLease / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := w.store.ReschedulePoll(ctx, id, w.now().Add(w.opts.PollLease)); err != nil {
					w.log.Warn("renew poll claim", "poll", id, "err", err)
				}
			}
		}
	}()
	err := w.pollOnce(ctx, id, run)
	close(done)
	<-renewed
	return err
}

// pollOnce dispatches poll id to its kind's poll; a panic is a failure.
func (w *Worker) pollOnce(ctx context.Context, id string, run int) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("poll %s panicked: %v", id, p)
		}
	}()
	if w.pollFunc != nil {
		return w.pollFunc(ctx, id, run)
	}
	if dist, ok := strings.CutPrefix(id, pollTaskID("")); ok {
		return w.pollJob(ctx, dist, run)
	}
	if p, ok := parseDevicePollID(id); ok {
		return w.pollDeviceJob(ctx, p, run)
	}
	w.log.Error("unknown poll in the schedule, dropped", "poll", id)
	return nil
}

// parseDevicePollID is the inverse of devicePollID.
func parseDevicePollID(id string) (DevicePayload, bool) {
	rest, ok := strings.CutPrefix(id, devicePollPrefix)
	if !ok {
		return DevicePayload{}, false
	}
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 {
		return DevicePayload{}, false
	}
	n, err := strconv.Atoi(rest[i+1:])
	if err != nil || n < 0 {
		return DevicePayload{}, false
	}
	return DevicePayload{ID: rest[:i], Job: n}, true
}
