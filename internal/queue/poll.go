package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/distq/distq/internal/alibaba"
	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/quota"
	"github.com/distq/distq/internal/store"
)

// pollJob asks QueryDeviceDistributeJob how a distribution's job goes; run
// counts this process's polls of it (0 first). Until Status 2 (succeeded)
// or 3 (failed) it answers a *WaitError with the time to the next Query;
// the job's slot stays pinned meanwhile. At the end it records the final
// state first, then deletes the remote job when configured, then frees the
// slot, and answers nil: a crash between the steps never fails a
// distribution whose job succeeded (the poll runs again after its lease).
func (w *Worker) pollJob(ctx context.Context, id string, run int) error {
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
	// The remote job exists: its slot is pinned, and counted even if it
	// was lost meanwhile (Q2). The Create pinned it; the poll pins it again
	// on every repinEvery-th run (a Redis that lost its data gets the pin
	// back), not on every run, which would cost a script per Query.
	if run%repinEvery == repinEvery-1 {
		if _, _, err := w.limiter.PinSlot(ctx, a.UID, id, ""); err != nil {
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
	asked := w.now()
	err = w.do(ctx, a, alibaba.ActionQuery, func() error {
		var err error
		job, err = a.Client.QueryContext(ctx, r.JobID)
		return err
	})
	if err != nil {
		apiErr := alibaba.AsAPIError(err)
		switch {
		case apiErr == nil:
			return err
		case apiErr.Class == alibaba.NotFound:
			// Confirm before failing: a job younger than NotFoundMinAge, or
			// still in the List, is not gone.
			gone, err := w.confirmGone(ctx, a, r)
			if err != nil {
				w.log.Warn("confirm job gone", "distribution_id", id, "job_id", r.JobID, "err", err)
				return &WaitError{Delay: 2 * w.opts.PollInterval, Reason: distribution.WaitBackoff}
			}
			if !gone {
				return &WaitError{Delay: w.opts.PollInterval}
			}
			// The job is gone (deleted outside distq): nothing more to learn.
			if err := w.finish(ctx, a, r, distribution.StateFailed, apiErrorOf(apiErr), nil); err != nil {
				return err
			}
			w.releaseSlot(ctx, a, id)
			return nil
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
		w.jobEnded(ctx, a, r, asked)
		var err error
		if status == distribution.RemoteCompleted {
			err = w.finish(ctx, a, r, distribution.StateSucceeded, nil, &status)
		} else {
			err = w.finish(ctx, a, r, distribution.StateFailed, &distribution.Error{
				Code:    "JobInterrupted",
				Message: fmt.Sprintf("remote job %s ended with Status 3 (interrupted)", r.JobID),
			}, &status)
		}
		if err != nil {
			return err // nothing deleted, nothing freed: the next poll ends it
		}
		if a.DeleteFinished {
			w.deleteJob(ctx, a, r.JobID)
		}
		w.releaseSlot(ctx, a, id)
		return nil
	}
	w.polls.sawRunning(id, asked)
	if r.RemoteStatus == nil || *r.RemoteStatus != status {
		if _, _, err := w.apply(ctx, id, func(r *store.Record) error { return r.ObserveRemote(status) }); err != nil {
			return err
		}
	}
	return &WaitError{Delay: w.nextPoll(ctx, a, r.SubmittedAt), ranAt: asked}
}

// jobEnded feeds the account's job durations with how long r's job ran:
// from its Create's answer to the midpoint between the last Query that
// found it running and the one, asked at asked, that found it ended. The
// midpoint is the unbiased guess: the time the end was seen would add half
// a poll interval to every estimate (the polls, aimed just after the
// expected end, would come that much late), and a job found ended at its
// first Query would confirm an estimate that is too long for ever.
func (w *Worker) jobEnded(ctx context.Context, a *Account, r *store.Record, asked time.Time) {
	last, ok := w.polls.lastRunning(r.ID)
	if r.SubmittedAt == nil || r.State.Terminal() {
		return
	}
	if !ok {
		// The Query before ran in another worker: it kept its time in the
		// schedule. Without it the end would be guessed a poll interval
		// before asked, which biased every multi-worker estimate short.
		var err error
		if last, ok, err = w.store.PollRanAt(ctx, pollTaskID(r.ID)); err != nil {
			w.log.Warn("read when a job was last seen running", "distribution_id", r.ID, "err", err)
		}
	}
	// Without a Query here that saw it running, the end lies somewhere
	// before asked: count it a poll interval (an eighth of the duration for
	// long jobs) before, so that an estimate that is too long comes down
	// by steps, where halving it would throw it far too short.
	lower := asked.Add(-max(w.opts.PollInterval, asked.Sub(*r.SubmittedAt)/8))
	if ok && last.After(*r.SubmittedAt) && last.Before(asked) {
		lower = last
	}
	if lower.Before(*r.SubmittedAt) {
		lower = *r.SubmittedAt
	}
	end := lower.Add(asked.Sub(lower) / 2)
	before := w.durations.get(ctx, a.UID, w.store.JobDuration)
	mean, err := w.store.ObserveJobDuration(ctx, a.UID, end.Sub(*r.SubmittedAt))
	if err != nil {
		w.log.Warn("record job duration", "err", err)
		return
	}
	w.durations.set(a.UID, mean)
	if before == 0 || mean < before-w.opts.PollInterval {
		w.reaimPolls(ctx, a, mean)
	}
}

// maxReaim bounds the polls one re-aim looks at.
const maxReaim = 1000

// reaimPolls brings forward the polls of account a's running jobs that
// were scheduled for later than the estimate est now says: the first job
// of an account to end gives the estimate (the others were polled on the
// geometric schedule of an unknown duration, up to 25% late), and an
// estimate that fell by more than a poll interval makes the scheduled
// polls late. Best effort: a poll it misses keeps its time.
func (w *Worker) reaimPolls(ctx context.Context, a *Account, est time.Duration) {
	now := w.now()
	ids, err := w.store.PollsDueAfter(ctx, now.Add(w.opts.PollInterval), maxReaim)
	if err != nil {
		w.log.Warn("re-aim polls", "account", a.Name, "err", err)
		return
	}
	var dists []string
	for _, id := range ids {
		if d, ok := strings.CutPrefix(id, pollTaskID("")); ok {
			dists = append(dists, d)
		}
	}
	if len(dists) == 0 {
		return
	}
	recs, err := w.store.GetMany(ctx, dists)
	if err != nil {
		w.log.Warn("re-aim polls", "account", a.Name, "err", err)
		return
	}
	at := map[string]time.Time{}
	for _, r := range recs {
		if r.UID != a.UID || r.SubmittedAt == nil || r.State.Terminal() {
			continue
		}
		at[pollTaskID(r.ID)] = now.Add(pollDelay(now.Sub(*r.SubmittedAt), est, w.opts.PollInterval, w.opts.MaxPollGap))
	}
	if err := w.store.AdvancePolls(ctx, at); err != nil {
		w.log.Warn("re-aim polls", "account", a.Name, "err", err)
		return
	}
	w.kickPolls()
}

// repinEvery is how often (in runs of a poll task) a poll pins its slot again.
const repinEvery = 8

// deleteAttempts bounds the Delete calls for one finished job in one run.
const deleteAttempts = 3

// deleteJob deletes a finished remote job whose record is final, retrying
// a failed Delete; NotFound counts as done. It reports whether the job is
// gone. A job left behind is deleted by the reconciler when the remote
// refuses a Create for the job count (delete_finished auto).
func (w *Worker) deleteJob(ctx context.Context, a *Account, jobID string) bool {
	var err error
	for range deleteAttempts {
		if err = w.grant(ctx, a, alibaba.ActionDelete, w.opts.MaxRateWait); err != nil {
			break
		}
		err = w.do(ctx, a, alibaba.ActionDelete, func() error { return a.Client.DeleteContext(ctx, jobID) })
		if err == nil || alibaba.IsNotFound(err) {
			return true
		}
		if ctx.Err() != nil {
			break
		}
	}
	w.log.Warn("delete finished job", "job_id", jobID, "err", err)
	return false
}

// confirmGone checks a Query NotFound: the job is gone only when it is not
// in ListDeviceDistributeJob and was made at least NotFoundMinAge ago.
func (w *Worker) confirmGone(ctx context.Context, a *Account, r *store.Record) (bool, error) {
	if r.SubmittedAt != nil && w.now().Sub(*r.SubmittedAt) < w.opts.NotFoundMinAge {
		return false, nil
	}
	seen := false
	complete, err := w.listJobs(ctx, a, r, func(jobs []alibaba.Job) (bool, error) {
		seen = slices.ContainsFunc(jobs, func(j alibaba.Job) bool { return j.JobID == r.JobID })
		return seen, nil
	})
	return complete && !seen, err
}

// listJobs pages through ListDeviceDistributeJob for r's product and target
// UID, each page under the account's List rate, and hands the product jobs
// of every page to visit. It stops when visit says stop or fails, at the last page, or after
// maxLookupPages; complete reports whether it saw the last page.
func (w *Worker) listJobs(ctx context.Context, a *Account, r *store.Record, visit func([]alibaba.Job) (stop bool, err error)) (complete bool, err error) {
	token := ""
	for range maxLookupPages {
		if err := w.grant(ctx, a, alibaba.ActionList, w.opts.MaxRateWait); err != nil {
			return false, err
		}
		var jobs []alibaba.Job
		var next string
		err := w.do(ctx, a, alibaba.ActionList, func() error {
			var err error
			jobs, next, err = a.Client.ListContext(ctx, alibaba.ListFilter{ProductKey: r.ProductKey, TargetUID: r.TargetUID, NextToken: token})
			return err
		})
		if err != nil {
			return false, err
		}
		// Device jobs of the same product are never a product's.
		jobs = slices.DeleteFunc(jobs, alibaba.IsDeviceJob)
		if stop, err := visit(jobs); stop || err != nil {
			return false, err
		}
		if next == "" {
			return true, nil
		}
		token = next
	}
	return false, nil
}
