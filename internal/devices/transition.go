package devices

import (
	"fmt"
	"time"

	"github.com/distq/distq/internal/distribution"
)

// The named transitions of a device distribution and its jobs. Each checks
// the state it starts from and returns a *distribution.TransitionError
// (the record untouched) when that state does not allow it, or
// distribution.ErrNoChange when there is nothing to do; each leaves State
// and FinishedAt computed from the jobs (settle). The store applies them
// under compare-and-set, so a Cancel and a worker's StartCreate of the same
// job never both win.

// refuse is the refusal of op on job n (or the whole when n < 0).
func (r *Record) refuse(n int, op, allowed string) error {
	from := distribution.State(r.State)
	id := r.ID
	if n >= 0 && n < len(r.Jobs) {
		from = distribution.State(r.Jobs[n].State)
		id = fmt.Sprintf("%s job %d", r.ID, n)
	}
	return &distribution.TransitionError{ID: id, Op: op, From: from, Allowed: allowed}
}

// job returns job n, or an error naming the missing job.
func (r *Record) job(n int) (*Job, error) {
	if n < 0 || n >= len(r.Jobs) {
		return nil, fmt.Errorf("device distribution %s has no job %d: %w", r.ID, n, distribution.ErrNotFound)
	}
	return &r.Jobs[n], nil
}

// settle computes the distribution's State and FinishedAt from its jobs.
func (r *Record) settle(now time.Time) {
	created, open, canceled, failed := false, false, false, false
	for _, j := range r.Jobs {
		switch j.State {
		case JobPending:
			open = true
			created = created || j.Attempts > 0
		case JobSubmitting, JobRunning:
			open, created = true, true
		case JobCanceled:
			canceled = true
		case JobFailed:
			failed, created = true, true
		default:
			created = true
		}
	}
	switch {
	case open && created:
		r.State = StateRunning
	case open:
		r.State = StateQueued
	case failed:
		r.State = StateFailed
	case canceled:
		r.State = StateCanceled
	default:
		r.State = StateSucceeded
	}
	if r.State.Terminal() {
		if r.FinishedAt == nil {
			r.FinishedAt = &now
		}
	} else {
		r.FinishedAt = nil
	}
}

// Accepted sets a new record's jobs pending and its State.
func (r *Record) Accepted(now time.Time) {
	for i := range r.Jobs {
		r.Jobs[i].Index, r.Jobs[i].State = i, JobPending
	}
	r.settle(now)
}

// StartCreate marks job n's Create as about to be sent (the marker of
// docs/QUOTA.md's Q5): submitting, CreateSentAt now, one more attempt. Only
// a pending job starts; a canceled one never does.
func (r *Record) StartCreate(n int, now time.Time) error {
	j, err := r.job(n)
	if err != nil {
		return err
	}
	if j.State != JobPending {
		return r.refuse(n, "submitted", "a pending job")
	}
	j.State, j.WaitReason, j.CreateSentAt = JobSubmitting, distribution.WaitNone, &now
	j.Attempts++
	r.settle(now)
	return nil
}

// Requeue takes job n back to pending after a Create that provably did not
// go out (throttled, held back, refused for the job count, a transient
// error), clearing its marker. failure, when not nil, is kept as the job's
// last error and the attempt counts (MaxAttempts bounds those); nil takes
// the attempt back: the refusal was not the job's failure.
func (r *Record) Requeue(n int, now time.Time, reason distribution.WaitReason, failure *Error) error {
	j, err := r.job(n)
	if err != nil {
		return err
	}
	if j.State != JobSubmitting || j.JobID != "" {
		return r.refuse(n, "requeued", "a submitting job")
	}
	j.State, j.WaitReason, j.CreateSentAt = JobPending, reason, nil
	if failure != nil {
		j.Error = failure
	} else if j.Attempts > 0 {
		j.Attempts--
	}
	r.settle(now)
	return nil
}

// ForgetCreate clears the marker of a Create of unknown outcome once the
// remote list has shown no job for it past the visibility bound: job n
// goes back to pending, and a new Create may be sent.
func (r *Record) ForgetCreate(n int, now time.Time) error {
	j, err := r.job(n)
	if err != nil {
		return err
	}
	if j.State != JobSubmitting || j.CreateSentAt == nil || j.JobID != "" {
		return r.refuse(n, "forgotten", "a submitting job without a remote job")
	}
	j.State, j.CreateSentAt = JobPending, nil
	r.settle(now)
	return nil
}

// Wait shows why pending job n waits; ErrNoChange when it says so already.
func (r *Record) Wait(n int, reason distribution.WaitReason) error {
	j, err := r.job(n)
	if err != nil {
		return err
	}
	if j.State != JobPending {
		return r.refuse(n, "set waiting", "a pending job")
	}
	if j.WaitReason == reason {
		return distribution.ErrNoChange
	}
	j.WaitReason = reason
	return nil
}

// Started records job n's remote JobId (and Status, when a lookup found
// it). A job whose Create was canceled meanwhile cannot exist: only a
// pending or submitting job starts. A job that has a JobId keeps it: the
// caller compares and raises the alarm.
func (r *Record) Started(n int, now time.Time, jobID string, status *int) error {
	j, err := r.job(n)
	if err != nil {
		return err
	}
	if j.JobID != "" {
		return distribution.ErrNoChange
	}
	if j.State != JobPending && j.State != JobSubmitting {
		return r.refuse(n, "started", "a pending or submitting job")
	}
	j.State, j.WaitReason, j.JobID, j.RemoteStatus, j.SubmittedAt = JobRunning, distribution.WaitNone, jobID, status, &now
	if j.CreateSentAt == nil {
		j.CreateSentAt = &now
	}
	r.settle(now)
	return nil
}

// ObserveRemote records the remote Status of running job n.
func (r *Record) ObserveRemote(n int, status int) error {
	j, err := r.job(n)
	if err != nil {
		return err
	}
	if j.State != JobRunning {
		return r.refuse(n, "observed", "a running job")
	}
	if j.RemoteStatus != nil && *j.RemoteStatus == status {
		return distribution.ErrNoChange
	}
	j.RemoteStatus = &status
	return nil
}

// DetailFailed counts a failed try at job n's result file.
func (r *Record) DetailFailed(n int, e *Error) error {
	j, err := r.job(n)
	if err != nil {
		return err
	}
	if j.State != JobRunning {
		return r.refuse(n, "noted", "a running job")
	}
	j.DetailAttempts++
	j.Error = e
	return nil
}

// Ended records the end of running job n: remote Status 2 (succeeded) or
// 3 (failed), and its devices' outcomes when details is DetailsComplete.
func (r *Record) Ended(n int, now time.Time, status int, details Details, distributed, failed int, e *Error) error {
	j, err := r.job(n)
	if err != nil {
		return err
	}
	if j.State != JobRunning {
		return r.refuse(n, "ended", "a running job")
	}
	j.State = JobSucceeded
	if status != distribution.RemoteCompleted {
		j.State = JobFailed
	}
	j.RemoteStatus, j.FinishedAt, j.Details, j.Error = &status, &now, details, e
	j.Distributed, j.Failed = 0, 0
	if details == DetailsComplete {
		j.Distributed, j.Failed = distributed, failed
	}
	r.settle(now)
	return nil
}

// Fail ends job n without a remote job: the Create was refused for good
// (or NotFound confirmed the job gone). Every device of the job failed
// with e, unless the job had a JobId (then their outcome is unknown).
func (r *Record) Fail(n int, now time.Time, e *Error) error {
	j, err := r.job(n)
	if err != nil {
		return err
	}
	if j.State.Final() {
		return r.refuse(n, "failed", "an unfinished job")
	}
	j.State, j.WaitReason, j.FinishedAt, j.Error = JobFailed, distribution.WaitNone, &now, e
	if j.JobID == "" {
		j.Details, j.Distributed, j.Failed = DetailsComplete, 0, j.Devices
	} else {
		j.Details = DetailsUnavailable
	}
	r.settle(now)
	return nil
}

// Cancel cancels every pending job (no Create is ever sent for them) and
// returns their indexes; jobs whose Create is out run to their end. A
// distribution with no pending job cannot be canceled.
func (r *Record) Cancel(now time.Time) ([]int, error) {
	var canceled []int
	for i := range r.Jobs {
		if j := &r.Jobs[i]; j.State == JobPending {
			j.State, j.WaitReason, j.FinishedAt = JobCanceled, distribution.WaitNone, &now
			canceled = append(canceled, i)
		}
	}
	if len(canceled) == 0 {
		return nil, r.refuse(-1, "canceled", "a device distribution with jobs not yet created")
	}
	r.settle(now)
	return canceled, nil
}

// Retryable returns the jobs whose failed devices a retry sends again:
// finished, results read, some devices failed, not retried yet.
func (r *Record) Retryable() []int {
	var out []int
	for _, j := range r.Jobs {
		if (j.State == JobSucceeded || j.State == JobFailed) && j.Details == DetailsComplete && j.Failed > 0 && !j.Retried {
			out = append(out, j.Index)
		}
	}
	return out
}

// Retry adds one new pending job per entry of sizes for the failed devices
// of jobs from (as Retryable returned them), marks those retried, and
// returns the new jobs' indexes. Only a finished distribution whose jobs
// from are still retryable is retried.
func (r *Record) Retry(now time.Time, from []int, sizes []int) ([]int, error) {
	if !r.State.Terminal() {
		return nil, r.refuse(-1, "retried", "a finished device distribution")
	}
	retryable := map[int]bool{}
	for _, i := range r.Retryable() {
		retryable[i] = true
	}
	if len(from) == 0 || len(sizes) == 0 {
		return nil, r.refuse(-1, "retried", "a device distribution with failed devices")
	}
	for _, i := range from {
		if !retryable[i] {
			return nil, r.refuse(-1, "retried", "a device distribution with failed devices not yet retried")
		}
	}
	for _, i := range from {
		r.Jobs[i].Retried = true
	}
	var added []int
	for _, size := range sizes {
		n := len(r.Jobs)
		r.Jobs = append(r.Jobs, Job{Index: n, Devices: size, State: JobPending, RetryOf: append([]int(nil), from...)})
		added = append(added, n)
	}
	r.settle(now)
	return added, nil
}

// Touch sets UpdatedAt (the store calls it on every write).
func (r *Record) Touch(now time.Time) { r.UpdatedAt = now }
