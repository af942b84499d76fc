package queue

import (
	"context"
	"errors"
	"time"

	"github.com/hibiken/asynq"

	"github.com/distq/distq/internal/alibaba"
	"github.com/distq/distq/internal/distribution"
)

const reconcileLockKey = "distq:reconcile:lock"

// requestReconcile asks the reconciler of this process for a run now.
func (w *Worker) requestReconcile() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// RunReconciler repairs, every interval and on request, what crashes and
// the outside world leave behind, until ctx ends: it counts remote jobs made
// outside distq against the slots, frees slots whose distribution is
// finished or gone, and enqueues again the tasks of open distributions whose
// task was lost (an api crash between writing and enqueueing, a Redis
// restart). One worker at a time does a pass, under a lock in Redis.
func (w *Worker) RunReconciler(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := w.Reconcile(ctx, interval); err != nil && ctx.Err() == nil {
			w.log.Warn("reconcile", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.kick:
		}
	}
}

// Reconcile makes one pass, unless another worker made one within
// minGap. It is safe to call from several processes at once.
func (w *Worker) Reconcile(ctx context.Context, minGap time.Duration) error {
	rdb := w.store.Client()
	ok, err := rdb.SetNX(ctx, reconcileLockKey, "1", max(minGap/2, time.Second)).Result()
	if err != nil {
		return err
	}
	if !ok {
		// Another worker repairs; this one still refreshes its gauges, which
		// dashboards and alerts read with max() across workers: a stale one
		// would show slots or waits long gone.
		return w.reconcileOpen(ctx, false)
	}
	seen := map[string]bool{}
	var errs []error
	for _, a := range w.accounts {
		if seen[a.UID] {
			continue
		}
		seen[a.UID] = true
		if err := w.reconcileSlots(ctx, a); err != nil {
			errs = append(errs, err)
		}
	}
	if err := w.reconcileOpen(ctx, true); err != nil {
		errs = append(errs, err)
	}
	if w.passes.Add(1)%100 == 1 {
		if _, err := w.store.Trim(ctx); err != nil {
			errs = append(errs, err)
		}
		if _, err := w.store.SweepClaims(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// reconcileSlots frees leaked slots and counts external jobs for one UID.
func (w *Worker) reconcileSlots(ctx context.Context, a *Account) error {
	holders, err := w.limiter.Holders(ctx, a.UID)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(holders))
	for id := range holders {
		ids = append(ids, id)
	}
	recs, err := w.store.GetMany(ctx, ids)
	if err != nil {
		return err
	}
	ours := map[string]bool{}
	live := map[string]bool{}
	for _, r := range recs {
		live[r.ID] = !r.State.Terminal()
		if r.JobID != "" {
			ours[r.JobID] = true
		}
	}
	for _, id := range ids {
		if !live[id] {
			w.releaseSlot(ctx, a, id)
			w.metrics.Reconciled.WithLabelValues(a.Name, "released_slot").Inc()
		}
	}
	// Remote jobs that hold quota but no distq record: made outside distq.
	external, token := 0, ""
	for page := 0; page < 50; page++ {
		if err := w.grant(ctx, a, alibaba.ActionList, w.opts.MaxRateWait); err != nil {
			return err
		}
		var jobs []alibaba.Job
		var next string
		err := w.do(ctx, a, alibaba.ActionList, func() error {
			var err error
			jobs, next, err = a.Client.List(alibaba.ListFilter{NextToken: token})
			return err
		})
		if err != nil {
			return err
		}
		for _, j := range jobs {
			unfinished := j.Status == distribution.RemoteInitializing || j.Status == distribution.RemoteRunning
			if (unfinished || a.DeleteFinished) && !ours[j.JobID] {
				external++
			}
		}
		if next == "" {
			break
		}
		token = next
	}
	return w.limiter.SetExternal(ctx, a.UID, external)
}

// reconcileOpen refreshes the slot and waiting gauges and, with repair,
// re-enqueues the task of every open distribution older than OrphanAge
// whose task is missing.
func (w *Worker) reconcileOpen(ctx context.Context, repair bool) error {
	for _, a := range w.accounts {
		w.refreshSlotGauge(ctx, a)
	}
	cutoff := w.now().Add(-w.opts.OrphanAge)
	ids, err := w.store.Open(ctx, w.now(), 5000)
	if err != nil {
		return err
	}
	waiting := map[[2]string]int{}
	for start := 0; start < len(ids); start += 500 {
		recs, err := w.store.GetMany(ctx, ids[start:min(start+500, len(ids))])
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.State.Terminal() {
				continue
			}
			if r.WaitReason != "" {
				waiting[[2]string{r.Account, string(r.WaitReason)}]++
			}
			if !repair || !r.UpdatedAt.Before(cutoff) {
				continue // young: its task is surely still there
			}
			var task *asynq.Task
			var opts []asynq.Option
			if r.JobID != "" {
				task, opts = pollTask(r.ID)
			} else {
				task, opts = submitTask(r)
			}
			_, err := w.client.EnqueueContext(ctx, task, opts...)
			switch {
			case errors.Is(err, asynq.ErrTaskIDConflict):
			case err != nil:
				return err
			default:
				w.metrics.Reconciled.WithLabelValues(r.Account, "requeued_task").Inc()
				w.log.Info("re-enqueued lost task", "distribution_id", r.ID, "type", task.Type())
			}
		}
	}
	for name := range w.accounts {
		for _, reason := range []distribution.WaitReason{distribution.WaitRateLimit, distribution.WaitJobSlots, distribution.WaitBackoff} {
			w.metrics.Waiting.WithLabelValues(name, string(reason)).Set(float64(waiting[[2]string{name, string(reason)}]))
		}
	}
	return nil
}
