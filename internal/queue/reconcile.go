package queue

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/hibiken/asynq"

	"github.com/distq/distq/internal/alibaba"
	"github.com/distq/distq/internal/devices"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/store"
)

const reconcileLockKey = "distq:reconcile:lock"

// quotaRefused notes that the remote refused a Create for the job count
// while distq's slots had room, and asks for a reconcile pass, which then
// also lists finished jobs and deletes distq's own (delete_finished auto).
func (w *Worker) quotaRefused(a *Account) {
	w.refusedMu.Lock()
	if w.refused == nil {
		w.refused = map[string]bool{}
	}
	w.refused[a.UID] = true
	w.refusedMu.Unlock()
	w.requestReconcile()
}

// takeRefused reports and clears the quotaRefused note of uid.
func (w *Worker) takeRefused(uid string) bool {
	w.refusedMu.Lock()
	defer w.refusedMu.Unlock()
	r := w.refused[uid]
	delete(w.refused, uid)
	return r
}

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
		// Another worker repairs; this one still refreshes its slot gauge,
		// which dashboards and alerts read with max() across workers: a stale
		// one would show slots long gone. (The waiting gauge is read from
		// Redis at each scrape: metrics.NewWaitingCollector.)
		for _, a := range w.accounts {
			w.refreshSlotGauge(ctx, a)
		}
		return nil
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
	if err := w.reconcileOpen(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := w.reconcileDevicesOpen(ctx); err != nil {
		errs = append(errs, err)
	}
	if w.passes.Add(1)%100 == 1 {
		if _, err := w.store.Trim(ctx); err != nil {
			errs = append(errs, err)
		}
		if _, err := w.store.SweepClaims(ctx); err != nil {
			errs = append(errs, err)
		}
		if len(errs) == 0 {
			if err := w.retireQueuePoll(); err != nil {
				errs = append(errs, err)
			}
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
		if !live[id] && !devices.IsHolder(id) {
			w.releaseSlot(ctx, a, id)
			w.metrics.Reconciled.WithLabelValues(a.Name, "released_slot").Inc()
		}
	}
	// distq's own device jobs (holders dev:<id>:<n>) are not external.
	devOurs, devPending, err := w.reconcileDeviceSlots(ctx, a, ids)
	if err != nil {
		return err
	}
	maps.Copy(ours, devOurs)
	// Remote jobs that hold quota but no slot of distq: made outside distq.
	if w.takeRefused(a.UID) {
		// The remote refused a Create for the job count while the slots had
		// room: it counts finished jobs not yet deleted. Delete distq's own
		// finished jobs (of final records), and count the rest.
		n, err := w.purgeFinished(ctx, a, ours)
		if err != nil {
			return err
		}
		return w.limiter.SetExternal(ctx, a.UID, n)
	}
	// Only unfinished jobs (Status 0, 1) are listed, within a page budget:
	// a long history of finished jobs must not eat the List rate.
	external := 0
	budget := reconcileListPages
	for _, status := range []int{distribution.RemoteInitializing, distribution.RemoteRunning} {
		n, used, err := w.countJobs(ctx, a, &status, budget, func(j alibaba.Job) bool { return !ours[j.JobID] && !devPending(j) })
		if err != nil {
			return err
		}
		external += n
		budget -= used
	}
	return w.limiter.SetExternal(ctx, a.UID, external)
}

// reconcileListPages bounds the List pages of one reconcile pass per account.
const reconcileListPages = 10

// countJobs lists the account's jobs of one status (all when nil), at most
// budget pages, and counts those count says yes to.
func (w *Worker) countJobs(ctx context.Context, a *Account, status *int, budget int, count func(alibaba.Job) bool) (n, pages int, err error) {
	token := ""
	for pages < budget {
		if err := w.grant(ctx, a, alibaba.ActionList, w.opts.MaxRateWait); err != nil {
			return n, pages, err
		}
		var jobs []alibaba.Job
		var next string
		err := w.do(ctx, a, alibaba.ActionList, func() error {
			var err error
			jobs, next, err = a.Client.ListContext(ctx, alibaba.ListFilter{Status: status, NextToken: token})
			return err
		})
		pages++
		if err != nil {
			return n, pages, err
		}
		for _, j := range jobs {
			if count(j) {
				n++
			}
		}
		if next == "" {
			break
		}
		token = next
	}
	return n, pages, nil
}

// purgeFinished deletes the account's finished remote jobs that distq owns
// and whose distribution is final, and returns how many jobs hold quota
// without a slot of distq: unfinished or finished, made outside distq (or
// left undeleted). Jobs made outside distq are never deleted.
func (w *Worker) purgeFinished(ctx context.Context, a *Account, ours map[string]bool) (int, error) {
	var mine []string
	n, _, err := w.countJobs(ctx, a, nil, 5*reconcileListPages, func(j alibaba.Job) bool {
		if ours[j.JobID] {
			return false
		}
		finished := j.Status == distribution.RemoteCompleted || j.Status == distribution.RemoteInterrupted
		if finished {
			if owner, err := w.store.JobOwner(ctx, j.JobID); err == nil && owner != "" {
				if r, err := w.store.Get(ctx, owner); errors.Is(err, store.ErrNotFound) || err == nil && r.State.Terminal() {
					mine = append(mine, j.JobID)
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	for _, id := range mine {
		if !w.deleteJob(ctx, a, id) {
			n++
		}
	}
	w.metrics.Reconciled.WithLabelValues(a.Name, "deleted_finished").Add(float64(len(mine)))
	w.log.Info("remote refused a create for the job count; deleted distq's finished jobs", "account", a.Name, "deleted", len(mine), "external", n)
	return n, nil
}

// reconcileOpen refreshes the slot gauge, re-enqueues the task of every
// open distribution older than OrphanAge whose task is missing, and puts
// back in the poll schedule every such running one missing from it.
func (w *Worker) reconcileOpen(ctx context.Context) error {
	for _, a := range w.accounts {
		w.refreshSlotGauge(ctx, a)
	}
	cutoff := w.now().Add(-w.opts.OrphanAge)
	ids, err := w.store.Open(ctx, w.now(), 5000)
	if err != nil {
		return err
	}
	for start := 0; start < len(ids); start += 500 {
		recs, err := w.store.GetMany(ctx, ids[start:min(start+500, len(ids))])
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.State.Terminal() {
				continue
			}
			if !r.UpdatedAt.Before(cutoff) {
				continue // young: its task is surely still there
			}
			if r.JobID != "" {
				if err := w.ensureScheduled(ctx, r.Account, pollTaskID(r.ID)); err != nil {
					return err
				}
				continue
			}
			task, opts := submitTask(r)
			_, err := w.enqueue(ctx, task, opts...)
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
	return nil
}

// ensureScheduled puts poll id of an account's job back in the poll
// schedule, due now, if it is missing there (a lost write, a Redis that
// lost data, a poll task of an earlier version).
func (w *Worker) ensureScheduled(ctx context.Context, account, id string) error {
	added, err := w.store.SchedulePoll(ctx, id, w.now())
	if err != nil {
		return err
	}
	if added {
		w.metrics.Reconciled.WithLabelValues(account, "requeued_poll").Inc()
		w.log.Info("put a lost poll back in the schedule", "poll", id)
		w.kickPolls()
	}
	return nil
}

// retireQueuePoll deletes the poll queue of earlier versions, once the
// reconciler has put its polls in the schedule.
func (w *Worker) retireQueuePoll() error {
	err := w.inspector.DeleteQueue(QueuePoll, true)
	if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		return fmt.Errorf("delete the poll queue of an earlier version: %w", err)
	}
	return nil
}
