package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/distq/distq/internal/alibaba"
	"github.com/distq/distq/internal/devices"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/quota"
)

// pollDeviceJob is pollJob for job p.Job of a device distribution: it
// asks QueryDeviceDistributeJob how the job goes, until Status 2 or 3,
// with the job's slot pinned meanwhile; at the end it reads the job's
// per-device results (QueryDeviceDistributeDetail, then the file within
// its validity), writes them, records the job's end, deletes the remote
// job when configured, and frees the slot, in that order: a crash between
// the steps repeats them, never loses an outcome.
func (w *Worker) pollDeviceJob(ctx context.Context, p DevicePayload, run int) error {
	r, a, ok, err := w.loadDeviceJob(ctx, p)
	if !ok || err != nil {
		return err
	}
	j := r.Jobs[p.Job]
	holder := devices.Holder(p.ID, p.Job)
	if j.State.Final() {
		w.releaseSlot(ctx, a, holder)
		return nil
	}
	if j.JobID == "" {
		return nil
	}
	if run%repinEvery == repinEvery-1 {
		if _, _, err := w.limiter.PinSlot(ctx, a.UID, holder, ""); err != nil {
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
		job, err = a.Client.QueryContext(ctx, j.JobID)
		return err
	})
	if err != nil {
		apiErr := alibaba.AsAPIError(err)
		switch {
		case apiErr == nil:
			return err
		case apiErr.Class == alibaba.NotFound:
			gone, err := w.confirmDeviceJobGone(ctx, a, r, p.Job)
			if err != nil {
				w.log.Warn("confirm device job gone", "device_distribution_id", p.ID, "job", p.Job, "job_id", j.JobID, "err", err)
				return &WaitError{Delay: 2 * w.opts.PollInterval, Reason: distribution.WaitBackoff}
			}
			if !gone {
				return &WaitError{Delay: w.opts.PollInterval}
			}
			now := w.now()
			if _, _, err := w.applyDevices(ctx, p.ID, func(r *devices.Record) error { return r.Fail(p.Job, now, apiErrorOf(apiErr)) }); err != nil {
				return err
			}
			w.releaseSlot(ctx, a, holder)
			return nil
		case apiErr.Class == alibaba.Throttled:
			return &WaitError{Delay: time.Second, Reason: distribution.WaitBackoff}
		default:
			w.log.Warn("device poll failed", "device_distribution_id", p.ID, "job", p.Job, "job_id", j.JobID, "err", err)
			return &WaitError{Delay: 2 * w.opts.PollInterval, Reason: distribution.WaitBackoff}
		}
	}
	switch status := job.Status; status {
	case distribution.RemoteCompleted, distribution.RemoteInterrupted:
		return w.endDeviceJob(ctx, a, r, p.Job, status)
	default:
		if j.RemoteStatus == nil || *j.RemoteStatus != status {
			if _, _, err := w.applyDevices(ctx, p.ID, func(r *devices.Record) error { return r.ObserveRemote(p.Job, status) }); err != nil {
				return err
			}
		}
	}
	// No estimate of a device job's length: ask again after a quarter of
	// the time it has run (a finish is seen at most 25% late).
	elapsed := time.Duration(0)
	if j.SubmittedAt != nil {
		elapsed = w.now().Sub(*j.SubmittedAt)
	}
	return &WaitError{Delay: pollDelay(elapsed, 0, w.opts.PollInterval, w.opts.MaxPollGap)}
}

// endDeviceJob reads the results of job n, ended with status, and records
// them; then the remote job is deleted (when configured) and the slot freed.
func (w *Worker) endDeviceJob(ctx context.Context, a *Account, r *devices.Record, n int, status int) error {
	j := r.Jobs[n]
	holder := devices.Holder(r.ID, n)
	results, detailErr := w.deviceResults(ctx, a, j.JobID)
	var wait *WaitError
	if errors.As(detailErr, &wait) {
		return wait // the Detail rate, or a throttled Detail: the next run tries again
	}
	details := devices.DetailsComplete
	var jobErr *devices.Error
	if status == distribution.RemoteInterrupted {
		jobErr = &devices.Error{Code: devices.CodeJobInterrupted, Message: fmt.Sprintf("remote job %s ended with Status 3 (interrupted)", j.JobID)}
	}
	var distributed, failed int
	if detailErr != nil {
		attempts := j.DetailAttempts + 1
		w.log.Warn("device job results unreadable", "device_distribution_id", r.ID, "job", n, "job_id", j.JobID,
			"attempt", attempts, "err", detailErr)
		if attempts < maxDetailAttempts && !errors.Is(detailErr, alibaba.ErrUnreadable) {
			e := &devices.Error{Code: "DetailsUnavailable", Message: detailErr.Error()}
			if _, _, err := w.applyDevices(ctx, r.ID, func(r *devices.Record) error { return r.DetailFailed(n, e) }); err != nil {
				return err
			}
			return &WaitError{Delay: time.Duration(attempts) * w.opts.PollInterval, Reason: distribution.WaitBackoff}
		}
		// The job's end is known; its devices' outcomes are not. The
		// distribution does not fail for it (details: unavailable).
		details = devices.DetailsUnavailable
		if jobErr == nil {
			jobErr = &devices.Error{Code: "DetailsUnavailable", Message: detailErr.Error()}
		}
	} else {
		names, err := w.store.DeviceNames(ctx, r.ID, n)
		if err != nil {
			return err
		}
		merged := mergeResults(names, n, status, results)
		for _, m := range merged {
			if m.Distributed() {
				distributed++
			} else {
				failed++
			}
		}
		if err := w.store.PutDeviceResults(ctx, r.ID, n, merged); err != nil {
			return err
		}
	}
	now := w.now()
	cur, applied, err := w.applyDevices(ctx, r.ID, func(r *devices.Record) error {
		return r.Ended(n, now, status, details, distributed, failed, jobErr)
	})
	if err != nil {
		return err // nothing deleted, nothing freed: the next poll ends it
	}
	if applied {
		w.log.Info("device job ended", "device_distribution_id", r.ID, "job", n, "account", a.Name, "job_id", j.JobID,
			"status", status, "distributed", distributed, "failed", failed, "details", details, "state", cur.State)
		if j.SubmittedAt != nil {
			w.metrics.Duration.WithLabelValues(a.Name).Observe(now.Sub(*j.SubmittedAt).Seconds())
		}
	}
	if a.DeleteFinished {
		w.deleteJob(ctx, a, j.JobID)
	}
	w.releaseSlot(ctx, a, holder)
	return nil
}

// deviceResults asks QueryDeviceDistributeDetail for job jobID's result
// file and downloads it at once (its URL is valid 10 minutes). A rate wait
// or a throttled call is a *WaitError; a file that cannot be fetched or
// read is another error.
func (w *Worker) deviceResults(ctx context.Context, a *Account, jobID string) ([]alibaba.DeviceResult, error) {
	if _, err := w.limiter.WaitGrant(ctx, a.UID, alibaba.ActionDetail, detailQPS, w.opts.MaxRateWait); err != nil {
		var tl *quota.TooLongError
		if errors.As(err, &tl) {
			return nil, &WaitError{Delay: tl.Wait, Reason: distribution.WaitRateLimit}
		}
		return nil, err
	}
	var file string
	err := w.do(ctx, a, alibaba.ActionDetail, func() error {
		var err error
		file, err = a.Client.DetailContext(ctx, jobID)
		return err
	})
	if err != nil {
		if alibaba.IsThrottled(err) {
			return nil, &WaitError{Delay: time.Second, Reason: distribution.WaitBackoff}
		}
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, w.opts.CallTimeout)
	defer cancel()
	return a.Client.Download(dctx, file)
}

// mergeResults gives every name of job n its outcome: the file's line for
// it, or, when the file does not list it, NoResult (a completed job) or
// JobInterrupted (an interrupted one). Lines for names the job did not
// carry are dropped.
func mergeResults(names []string, n, status int, file []alibaba.DeviceResult) []devices.Result {
	byName := make(map[string]alibaba.DeviceResult, len(file))
	for _, f := range file {
		if _, dup := byName[f.DeviceName]; !dup {
			byName[f.DeviceName] = f
		}
	}
	out := make([]devices.Result, len(names))
	for i, name := range names {
		f, ok := byName[name]
		switch {
		case ok:
			out[i] = devices.Result{DeviceName: name, Job: n, Code: f.Code, Message: f.Message, TargetInstanceID: f.TargetInstanceID}
		case status == distribution.RemoteInterrupted:
			out[i] = devices.Result{DeviceName: name, Job: n, Code: devices.CodeJobInterrupted,
				Message: "the job was interrupted before it handled this device"}
		default:
			out[i] = devices.Result{DeviceName: name, Job: n, Code: devices.CodeNoResult,
				Message: "the job's result file does not list this device"}
		}
	}
	return out
}

// confirmDeviceJobGone checks a Query NotFound of job n: gone only when
// not in ListDeviceDistributeJob and made at least NotFoundMinAge ago.
func (w *Worker) confirmDeviceJobGone(ctx context.Context, a *Account, r *devices.Record, n int) (bool, error) {
	j := r.Jobs[n]
	if j.SubmittedAt != nil && w.now().Sub(*j.SubmittedAt) < w.opts.NotFoundMinAge {
		return false, nil
	}
	seen := false
	complete, err := w.listDeviceJobs(ctx, a, r, func(jobs []alibaba.Job) (bool, error) {
		seen = slices.ContainsFunc(jobs, func(x alibaba.Job) bool { return x.JobID == j.JobID })
		return seen, nil
	})
	return complete && !seen, err
}
