package queue

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/hibiken/asynq"

	"github.com/distq/distq/internal/alibaba"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/quota"
	"github.com/distq/distq/internal/store"
)

// maxThrottleLoops bounds how often one run of a submit task goes back to
// the rate after Throttling answers before it hands itself back.
const maxThrottleLoops = 5

// forceLimit acquires a slot whatever the limit: for a remote job that
// exists already (adopted, or polled after a lost lease), which must be
// counted even when that overfills the account.
const forceLimit = math.MaxInt32

// HandleSubmit takes a queued distribution to a remote job: a slot, a rate
// grant, then CreateProductDistributeJob; or, after a Create of unknown
// outcome, a look in ListDeviceDistributeJob first (Q5).
func (w *Worker) HandleSubmit(ctx context.Context, t *asynq.Task) error {
	id, err := payloadID(t)
	if err != nil {
		return err
	}
	r, err := w.store.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		w.log.Warn("submit task without record", "distribution_id", id)
		return nil
	}
	if err != nil {
		return err
	}
	if r.State.Terminal() {
		return nil
	}
	a, err := w.account(r)
	if err != nil {
		return err
	}
	if r.JobID != "" {
		return w.ensurePoll(ctx, r.ID)
	}
	if r.CreateSentAt != nil {
		adopted, err := w.lookup(ctx, a, r)
		if err != nil {
			return w.lookupFailed(err)
		}
		if adopted {
			return nil
		}
		if r, _, err = w.apply(ctx, id, func(r *store.Record) error { return r.ForgetCreate(w.now()) }); err != nil {
			return err
		}
		if r.JobID != "" || r.State.Terminal() {
			return nil
		}
	}
	return w.submit(ctx, a, r)
}

func (w *Worker) lookupFailed(err error) error {
	var tl *quota.TooLongError
	if errors.As(err, &tl) {
		return &WaitError{Delay: tl.Wait, Reason: distribution.WaitRateLimit}
	}
	if alibaba.AsAPIError(err) != nil {
		// The List failed: try again later; the Create stays unsent.
		return &WaitError{Delay: 2 * time.Second, Reason: distribution.WaitBackoff}
	}
	return err
}

func (w *Worker) submit(ctx context.Context, a *Account, r *store.Record) error {
	id := r.ID
	for loop := 0; ; loop++ {
		ok, inUse, err := w.limiter.AcquireSlot(ctx, a.UID, id, a.MaxJobs, w.opts.SlotLease)
		if err != nil {
			return err
		}
		w.metrics.SlotsInUse.WithLabelValues(a.Name).Set(float64(inUse))
		if !ok {
			if err := w.addWaiter(ctx, a, r); err != nil {
				return err
			}
			w.setWaiting(ctx, id, distribution.WaitJobSlots)
			return &WaitError{Delay: w.opts.SlotRecheck, Reason: distribution.WaitJobSlots}
		}
		if r.WaitReason == distribution.WaitJobSlots {
			w.metrics.QuotaWait.WithLabelValues(a.Name, "slot").Observe(time.Since(r.UpdatedAt).Seconds())
		}
		if err := w.grant(ctx, a, alibaba.ActionCreate, w.maxCreateWait(r)); err != nil {
			w.releaseSlot(ctx, a, id)
			var tl *quota.TooLongError
			if errors.As(err, &tl) {
				w.setWaiting(ctx, id, distribution.WaitRateLimit)
				// Come back while the grants reserved meanwhile still cover
				// the gap, so the rate never idles for want of a taker (Q6).
				delay := max(tl.Wait-w.maxCreateWait(r)/2, 100*time.Millisecond)
				return &WaitError{Delay: delay, Reason: distribution.WaitRateLimit}
			}
			return err
		}
		granted := time.Now()
		// Mark the Create as sent before sending it: a crash from here on
		// leaves a marker that makes the next run look before creating (Q5).
		now := w.now()
		var started bool
		r, started, err = w.apply(ctx, id, func(r *store.Record) error { return r.StartSubmit(now) })
		if err != nil || !started { // canceled meanwhile, or another run has its job
			w.releaseSlot(ctx, a, id)
			return err
		}
		var jobID, requestID string
		err = w.doSince(ctx, a, alibaba.ActionCreate, granted, func() error {
			var err error
			jobID, requestID, err = a.Client.Create(alibaba.CreateRequest{
				ProductKey: r.ProductKey, SourceInstanceID: r.SourceInstanceID, TargetInstanceID: r.TargetInstanceID,
				TargetUID: r.TargetUID, TargetAliyunID: r.TargetAliyunID,
			})
			return err
		})
		if err == nil {
			return w.started(ctx, a, id, jobID, requestID, nil)
		}
		apiErr := alibaba.AsAPIError(err)
		switch apiErr.Class {
		case alibaba.Throttled:
			// Not executed, not a failure (Q4): the account pauses, then this
			// run goes back to the rate with its slot.
			if err := w.requeue(ctx, id, distribution.WaitBackoff, nil); err != nil {
				return err
			}
			if loop < maxThrottleLoops {
				continue
			}
			w.releaseSlot(ctx, a, id)
			return &WaitError{Delay: 2 * time.Second, Reason: distribution.WaitBackoff}
		case alibaba.QuotaExceeded:
			// The remote is fuller than the slots know: jobs made outside
			// distq. The reconciler counts them; wait for a slot.
			if err := w.requeue(ctx, id, distribution.WaitJobSlots, nil); err != nil {
				return err
			}
			w.limiter.ReleaseSlot(ctx, a.UID, id)
			if err := w.addWaiter(ctx, a, r); err != nil {
				return err
			}
			w.requestReconcile()
			return &WaitError{Delay: w.opts.SlotRecheck, Reason: distribution.WaitJobSlots}
		case alibaba.Ambiguous:
			// The job may exist: keep the marker and the slot; the next run
			// looks it up before any new Create.
			w.log.Warn("create outcome unknown", "distribution_id", id, "account", a.Name, "err", err)
			return &WaitError{Delay: time.Second, Reason: distribution.WaitBackoff}
		case alibaba.Permanent, alibaba.NotFound:
			w.releaseSlot(ctx, a, id)
			return w.finish(ctx, a, r, distribution.StateFailed, apiErrorOf(apiErr), nil)
		default: // Transient
			w.releaseSlot(ctx, a, id)
			if r.RunAttempts() >= w.opts.MaxAttempts {
				e := apiErrorOf(apiErr)
				e.Message = fmt.Sprintf("gave up after %d attempts: %s", r.RunAttempts(), e.Message)
				return w.finish(ctx, a, r, distribution.StateFailed, e, nil)
			}
			if err := w.requeue(ctx, id, distribution.WaitBackoff, apiErrorOf(apiErr)); err != nil {
				return err
			}
			return err
		}
	}
}

// addWaiter queues a distribution for a slot: single submissions ahead of
// batch items (Q7).
func (w *Worker) addWaiter(ctx context.Context, a *Account, r *store.Record) error {
	if r.Queue == QueueSingle {
		return w.limiter.AddPriorityWaiter(ctx, a.UID, r.ID)
	}
	return w.limiter.AddWaiter(ctx, a.UID, r.ID)
}

// maxCreateWait is how far ahead a distribution may reserve a Create
// grant. Batch items reserve only a little ahead, so that a single
// submission arriving later finds few grants taken before it (Q7).
func (w *Worker) maxCreateWait(r *store.Record) time.Duration {
	if r.Queue == QueueSingle {
		return w.opts.MaxRateWait
	}
	return w.opts.MaxBatchRateWait
}

// requeue puts a submitting distribution back to queued, clearing the
// Create marker (its outcome is known: not executed). failure, the error
// that ended the attempt, stays in the record's history; nil takes back the
// attempt when the refusal was not the distribution's failure.
func (w *Worker) requeue(ctx context.Context, id string, reason distribution.WaitReason, failure *distribution.Error) error {
	now := w.now()
	_, _, err := w.apply(ctx, id, func(r *store.Record) error { return r.Requeue(now, reason, failure) })
	return err
}

// setWaiting shows why a queued distribution waits (Q3), without a write
// when it already says so.
func (w *Worker) setWaiting(ctx context.Context, id string, reason distribution.WaitReason) {
	_, _, err := w.apply(ctx, id, func(r *store.Record) error { return r.Wait(reason) })
	if err != nil {
		w.log.Warn("set wait reason", "distribution_id", id, "err", err)
	}
}

// started records the remote job of a distribution and schedules its poll.
func (w *Worker) started(ctx context.Context, a *Account, id, jobID, requestID string, status *int) error {
	now := w.now()
	_, _, err := w.apply(ctx, id, func(r *store.Record) error { return r.Started(now, jobID, status) })
	if err != nil {
		// The job exists but is not recorded: the marker stays, so the next
		// run adopts it through the List.
		return fmt.Errorf("record job %s of %s: %w", jobID, id, err)
	}
	w.log.Info("distribution submitted", "distribution_id", id, "account", a.Name, "job_id", jobID, "remote_request_id", requestID)
	return w.ensurePoll(ctx, id)
}

func (w *Worker) ensurePoll(ctx context.Context, id string) error {
	t, opts := pollTask(id)
	_, err := w.client.EnqueueContext(ctx, t, append(opts, asynq.ProcessIn(w.opts.PollInterval))...)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue poll of %s: %w", id, err)
	}
	return nil
}

// lookup searches the remote job list for a job this distribution's earlier
// Create made, and adopts it. It reports whether it adopted one.
func (w *Worker) lookup(ctx context.Context, a *Account, r *store.Record) (bool, error) {
	// The remote clock may differ from ours; a minute of tolerance.
	since := r.CreateSentAt.Add(-time.Minute)
	token := ""
	for page := 0; page < 20; page++ {
		if err := w.grant(ctx, a, alibaba.ActionList, w.opts.MaxRateWait); err != nil {
			return false, err
		}
		var jobs []alibaba.Job
		var next string
		err := w.do(ctx, a, alibaba.ActionList, func() error {
			var err error
			jobs, next, err = a.Client.List(alibaba.ListFilter{ProductKey: r.ProductKey, TargetUID: r.TargetUID, NextToken: token})
			return err
		})
		if err != nil {
			return false, err
		}
		for _, j := range jobs {
			if j.ProductKey != r.ProductKey || j.SourceInstanceID != r.SourceInstanceID || j.CreatedAt.Before(since) {
				continue
			}
			if len(j.TargetInstanceIDs) > 0 && !contains(j.TargetInstanceIDs, r.TargetInstanceID) {
				continue
			}
			if _, _, err := w.limiter.AcquireSlot(ctx, a.UID, r.ID, forceLimit, w.opts.SlotLease); err != nil {
				return false, err
			}
			st := j.Status
			w.metrics.Reconciled.WithLabelValues(a.Name, "adopted_job").Inc()
			w.log.Info("adopted job of an earlier create", "distribution_id", r.ID, "job_id", j.JobID)
			return true, w.started(ctx, a, r.ID, j.JobID, "", &st)
		}
		if next == "" {
			break
		}
		token = next
	}
	return false, nil
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
