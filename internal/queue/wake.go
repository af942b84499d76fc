package queue

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hibiken/asynq"
)

// wakes are the in-process timers that run a waiting task when its wait
// ends. A task handed back with a WaitError (or a poll scheduled for later)
// sits in asynq's retry or scheduled set, which asynq's forwarder scans
// every DelayedTaskCheckInterval for every queue: a short interval makes an
// idle worker expensive, a long one makes every wait late. The timer moves
// the task to pending (Inspector.RunTask) as its wait ends; the forwarder,
// at a long interval, is only the fallback for the waits of a process that
// died.
type wakes struct {
	mu      sync.Mutex
	timers  map[string]*wakeTimer // by queue + task id
	stopped bool
}

type wakeTimer struct {
	t  *time.Timer
	at time.Time
}

// wakeRetries bounds the RunTask tries of one wake: the task may not be in
// its set yet when the timer of a very short wait fires.
const wakeRetries = 3

// wakeIn runs task id of queue in d. Of two wakes of one task, the sooner
// stands: a waiter woken for a freed slot while its handler still returns
// its wait is not put back to sleep by that wait (a wake too early costs
// one run of the task, which looks again).
func (w *Worker) wakeIn(queue, id string, d time.Duration) {
	k := queue + "\x00" + id
	d = max(d, 20*time.Millisecond)
	at := time.Now().Add(d)
	w.wakes.mu.Lock()
	defer w.wakes.mu.Unlock()
	if w.wakes.stopped {
		return
	}
	if w.wakes.timers == nil {
		w.wakes.timers = map[string]*wakeTimer{}
	}
	if old := w.wakes.timers[k]; old != nil {
		if old.at.Before(at) {
			return
		}
		old.t.Stop()
	}
	wt := &wakeTimer{at: at}
	tries := 0
	wt.t = time.AfterFunc(d, func() {
		err := w.runTask(queue, id)
		w.wakes.mu.Lock()
		defer w.wakes.mu.Unlock()
		if w.wakes.timers[k] != wt {
			return // replaced meanwhile
		}
		if err != nil && !errors.Is(err, asynq.ErrTaskNotFound) && !w.wakes.stopped {
			// Still active (its retry not written yet): try again shortly.
			if tries++; tries < wakeRetries {
				wt.at = time.Now().Add(200 * time.Millisecond)
				wt.t.Reset(200 * time.Millisecond)
				return
			}
		}
		delete(w.wakes.timers, k)
	})
	w.wakes.timers[k] = wt
}

// Waited is for asynq's ErrorHandler: a task handed back with a WaitError
// is woken in-process when its wait ends.
func (w *Worker) Waited(ctx context.Context, err error) {
	var we *WaitError
	if !errors.As(err, &we) {
		return
	}
	id, ok1 := asynq.GetTaskID(ctx)
	q, ok2 := asynq.GetQueueName(ctx)
	if ok1 && ok2 {
		w.wakeIn(q, id, we.Delay)
	}
}

// StopWakes stops the in-process wakes (at shutdown): the waiting tasks
// then run when asynq's forwarder finds them, here or in another worker.
func (w *Worker) StopWakes() {
	w.wakes.mu.Lock()
	defer w.wakes.mu.Unlock()
	w.wakes.stopped = true
	for k, t := range w.wakes.timers {
		t.t.Stop()
		delete(w.wakes.timers, k)
	}
}

// pendingWakes is how many wakes are scheduled (tests).
func (w *Worker) pendingWakes() int {
	w.wakes.mu.Lock()
	defer w.wakes.mu.Unlock()
	return len(w.wakes.timers)
}
