package queue

import (
	"context"
	"errors"
	"time"

	"github.com/hibiken/asynq"

	"github.com/distq/distq/internal/alibaba"
	"github.com/distq/distq/internal/devices"
	"github.com/distq/distq/internal/store"
)

// wakeDevice is wake for a device job's holder popped from the waiters: its
// submit task runs now; a holder handed a slot it will not use (its job
// final, canceled or gone) passes the slot on.
func (w *Worker) wakeDevice(ctx context.Context, a *Account, holder string, handed bool) {
	id, n, ok := devices.ParseHolder(holder)
	var r *devices.Record
	var err error
	if ok {
		r, err = w.store.GetDevices(ctx, id)
	}
	if !ok || errors.Is(err, store.ErrNotFound) || err == nil && (n >= len(r.Jobs) || r.Jobs[n].State.Final()) {
		if handed {
			w.releaseSlot(ctx, a, holder)
		}
		return
	}
	if err != nil {
		return // its own recheck finds the slot it was handed
	}
	if err := w.runTask(QueueBatch, deviceTaskID(id, n)); err != nil {
		w.wakeIn(QueueBatch, deviceTaskID(id, n), 50*time.Millisecond)
	}
}

// reconcileDeviceSlots looks at the device job holders among an account's
// slot holders: it frees the slots of jobs that are final or whose record
// is gone, and tells which remote jobs are distq's own device jobs, never
// to be counted as external: ours, the JobIds of the live jobs; and
// pending, which says yes to a device job that a live job without a
// recorded JobId may have made since the records were read (the remote job
// is claimed by a device job, or matches such a job's product, targets and
// device count). The remote list is read after the records: a job created
// in between must not count twice, as a slot and as external.
func (w *Worker) reconcileDeviceSlots(ctx context.Context, a *Account, holders []string) (ours map[string]bool, pending func(alibaba.Job) bool, err error) {
	ours = map[string]bool{}
	type open struct {
		r *devices.Record
		n int
	}
	var unrecorded []open
	pending = func(j alibaba.Job) bool {
		if !alibaba.IsDeviceJob(j) {
			return false
		}
		for _, o := range unrecorded {
			if deviceJobMatches(j, o.r, o.n) {
				return true
			}
		}
		owner, err := w.store.JobOwner(ctx, j.JobID)
		return err == nil && devices.IsHolder(owner)
	}
	for _, h := range holders {
		id, n, ok := devices.ParseHolder(h)
		if !ok {
			continue
		}
		r, err := w.store.GetDevices(ctx, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return ours, pending, err
		}
		if err == nil && n < len(r.Jobs) && !r.Jobs[n].State.Final() {
			if j := r.Jobs[n]; j.JobID != "" {
				ours[j.JobID] = true
			} else {
				unrecorded = append(unrecorded, open{r, n})
			}
			continue
		}
		w.releaseSlot(ctx, a, h)
		w.metrics.Reconciled.WithLabelValues(a.Name, "released_slot").Inc()
	}
	return ours, pending, nil
}

// reconcileDevicesOpen enqueues again the task of every unfinished job of
// the device distributions open for longer than OrphanAge whose task is
// missing, and (every 100th pass) trims the teams' device indexes.
func (w *Worker) reconcileDevicesOpen(ctx context.Context) error {
	if w.passes.Load()%100 == 1 {
		if _, err := w.store.TrimDevices(ctx); err != nil {
			return err
		}
	}
	cutoff := w.now().Add(-w.opts.OrphanAge)
	ids, err := w.store.OpenDevices(ctx, w.now(), 5000)
	if err != nil {
		return err
	}
	for _, id := range ids {
		r, err := w.store.GetDevices(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if r.State.Terminal() || !r.UpdatedAt.Before(cutoff) {
			continue
		}
		for _, j := range r.Jobs {
			if j.State.Final() {
				continue
			}
			if j.JobID != "" {
				if err := w.ensureScheduled(ctx, r.Account, devicePollID(id, j.Index)); err != nil {
					return err
				}
				continue
			}
			task, opts := deviceSubmitTask(id, j.Index)
			_, err := w.enqueue(ctx, task, opts...)
			switch {
			case errors.Is(err, asynq.ErrTaskIDConflict):
			case err != nil:
				return err
			default:
				w.metrics.Reconciled.WithLabelValues(r.Account, "requeued_task").Inc()
				w.log.Info("re-enqueued lost device task", "device_distribution_id", id, "job", j.Index, "type", task.Type())
			}
		}
	}
	return nil
}
