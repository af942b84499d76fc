package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/distq/distq/internal/alibaba"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/quota"
	"github.com/distq/distq/internal/store"
)

// HandlePoll asks QueryDeviceDistributeJob how a distribution's job goes,
// until Status 2 (succeeded) or 3 (failed); it keeps the job's slot leased
// meanwhile and frees it at the end.
func (w *Worker) HandlePoll(ctx context.Context, t *asynq.Task) error {
	id, err := payloadID(t)
	if err != nil {
		return err
	}
	r, err := w.store.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if r.State.Terminal() || r.JobID == "" {
		return nil
	}
	a, err := w.account(r)
	if err != nil {
		return err
	}
	// The remote job exists: its slot must stay counted, even if the lease
	// lapsed while no worker ran (Q2).
	held, err := w.limiter.RenewSlot(ctx, a.UID, id, w.opts.SlotLease)
	if err != nil {
		return err
	}
	if !held {
		if _, _, err := w.limiter.AcquireSlot(ctx, a.UID, id, forceLimit, w.opts.SlotLease); err != nil {
			return err
		}
	}
	if err := w.grant(ctx, a, alibaba.ActionQuery, w.opts.MaxRateWait); err != nil {
		var tl *quota.TooLongError
		if errors.As(err, &tl) {
			return &WaitError{Delay: tl.Wait, Reason: distribution.WaitRateLimit}
		}
		return err
	}
	var job alibaba.Job
	err = w.do(ctx, a, alibaba.ActionQuery, func() error {
		var err error
		job, err = a.Client.Query(r.JobID)
		return err
	})
	if err != nil {
		apiErr := alibaba.AsAPIError(err)
		switch {
		case apiErr == nil:
			return err
		case apiErr.Class == alibaba.NotFound:
			// The job is gone (deleted outside distq): nothing more to learn.
			w.releaseSlot(ctx, a, id)
			return w.finish(ctx, a, r, distribution.StateFailed, apiErrorOf(apiErr), nil)
		case apiErr.Class == alibaba.Throttled:
			return &WaitError{Delay: time.Second, Reason: distribution.WaitBackoff}
		default:
			w.log.Warn("poll failed", "distribution_id", id, "job_id", r.JobID, "err", err)
			return &WaitError{Delay: 2 * w.opts.PollInterval, Reason: distribution.WaitBackoff}
		}
	}
	status := job.Status
	switch status {
	case distribution.RemoteCompleted, distribution.RemoteInterrupted:
		w.deleteFinished(ctx, a, r.JobID)
		w.releaseSlot(ctx, a, id)
		if status == distribution.RemoteCompleted {
			return w.finish(ctx, a, r, distribution.StateSucceeded, nil, &status)
		}
		return w.finish(ctx, a, r, distribution.StateFailed, &distribution.Error{
			Code:    "JobInterrupted",
			Message: fmt.Sprintf("remote job %s ended with Status 3 (interrupted)", r.JobID),
		}, &status)
	}
	if r.RemoteStatus == nil || *r.RemoteStatus != status {
		if _, _, err := w.apply(ctx, id, func(r *store.Record) error { return r.ObserveRemote(status) }); err != nil {
			return err
		}
	}
	return &WaitError{Delay: w.opts.PollInterval}
}

// deleteFinished deletes a finished remote job when the account says so
// (where the remote counts jobs not yet deleted against the quota).
func (w *Worker) deleteFinished(ctx context.Context, a *Account, jobID string) {
	if !a.DeleteFinished {
		return
	}
	if err := w.grant(ctx, a, alibaba.ActionDelete, w.opts.MaxRateWait); err != nil {
		w.log.Warn("delete finished job", "job_id", jobID, "err", err)
		return
	}
	if err := w.do(ctx, a, alibaba.ActionDelete, func() error { return a.Client.Delete(jobID) }); err != nil {
		w.log.Warn("delete finished job", "job_id", jobID, "err", err)
	}
}
