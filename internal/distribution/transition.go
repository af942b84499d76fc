package distribution

import (
	"fmt"
	"time"
)

// Every change of a distribution's state is one of the named transitions
// below, called by the use cases (cancel, retry) and by the worker (the
// rest), each inside the store's compare-and-set Update: the transition
// sees the current record, so a cancel and a worker's StartSubmit racing on
// one queued record cannot both win.
//
//	queued ──StartSubmit──▶ submitting ──Started──▶ running ──Finish──▶ succeeded | failed
//	  ▲  │                    │  │
//	  │  └──Cancel──▶ canceled │  └──Finish(failed)
//	  └──────Requeue───────────┘
//	failed ──Retry──▶ queued
//
// A transition the record's state does not allow returns a
// *TransitionError and leaves the record untouched; one with nothing to do
// returns ErrNoChange.

// TransitionError is a transition the record's current state does not allow.
type TransitionError struct {
	ID string
	// Op is the transition, as a past participle: "canceled", "retried"…
	Op string
	// From is the state the record was in.
	From State
	// Allowed says which distributions Op applies to: "a queued distribution".
	Allowed string
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("distribution %s is %s; only %s can be %s", e.ID, e.From, e.Allowed, e.Op)
}

func (r *Record) refuse(op, allowed string) error {
	return &TransitionError{ID: r.ID, Op: op, From: r.State, Allowed: allowed}
}

// Cancel moves a queued distribution to canceled at now. No Create is ever
// sent for a canceled distribution: the worker's StartSubmit of the same
// record is refused once Cancel won.
func (r *Record) Cancel(now time.Time) error {
	if r.State != StateQueued {
		return r.refuse("canceled", "a queued distribution")
	}
	r.State, r.WaitReason, r.FinishedAt = StateCanceled, WaitNone, &now
	r.note(now, "canceled")
	return nil
}

// Retry puts a failed distribution back in the queue: no job, no error.
// Attempts and History stay, so the earlier attempts' errors remain
// visible; RetryBase starts a new run of attempts.
func (r *Record) Retry() error {
	if r.State != StateFailed {
		return r.refuse("retried", "a failed distribution")
	}
	r.closeAttempt(r.finishedOr(), OutcomeFailed, r.Error) // a record older than History
	r.State, r.WaitReason, r.Error = StateQueued, WaitNone, nil
	r.JobID, r.RemoteStatus, r.SubmittedAt, r.FinishedAt, r.CreateSentAt = "", nil, nil, nil, nil
	r.RetryBase = r.Attempts
	r.note(time.Time{}, "retried")
	return nil
}

// StartSubmit moves a queued distribution to submitting, marks its Create
// as sent at now and counts an attempt. The mark is made before the Create
// is sent: a crash after it makes the next run look the job up before
// creating another (Q5). A record that already holds a mark is refused,
// whatever its state: another run's Create may be out, and only a lookup
// (then ForgetCreate) may clear it. A Create refused in the same run is
// taken back with Requeue before the next StartSubmit.
func (r *Record) StartSubmit(now time.Time) error {
	if r.State != StateQueued && r.State != StateSubmitting || r.JobID != "" || r.CreateSentAt != nil {
		return r.refuse("submitted", "a queued distribution without a job or a pending Create")
	}
	r.closeAttempt(now, OutcomeRequeued, nil) // an earlier Create of this run that made no job
	r.State, r.WaitReason, r.CreateSentAt = StateSubmitting, WaitNone, &now
	r.Attempts++
	r.addAttempt(Attempt{Number: r.Attempts, StartedAt: now, Outcome: OutcomeInProgress})
	r.note(now, "create_sent")
	return nil
}

// Started records the remote job of a distribution, created (or adopted)
// at now: it runs, its Create mark is cleared. status is the job's remote
// status when known (an adopted job), else nil.
func (r *Record) Started(now time.Time, jobID string, status *int) error {
	if r.JobID != "" || r.State.Terminal() {
		return r.refuse("started", "an unfinished distribution without a job")
	}
	r.State, r.WaitReason, r.JobID, r.CreateSentAt = StateRunning, WaitNone, jobID, nil
	r.SubmittedAt = &now
	r.RemoteStatus = status
	if a := r.openAttempt(); a != nil {
		a.JobID = jobID
	}
	r.note(now, "started")
	return nil
}

// Requeue puts a submitting distribution back to queued at now, waiting
// for reason, and clears its Create mark: the remote refused without
// executing. failure is the error that ended the attempt, which stays in
// History; nil when the refusal was not the distribution's failure
// (throttling, a full quota): the attempt is then taken back.
func (r *Record) Requeue(now time.Time, reason WaitReason, failure *Error) error {
	if r.State != StateSubmitting {
		return r.refuse("requeued", "a submitting distribution")
	}
	r.State, r.WaitReason, r.CreateSentAt = StateQueued, reason, nil
	r.note(now, "requeued")
	if failure != nil {
		r.closeAttempt(now, OutcomeRequeued, failure)
		return nil
	}
	if r.Attempts > 0 {
		r.Attempts--
	}
	if a := r.openAttempt(); a != nil && a.Number == r.Attempts+1 {
		if r.History = r.History[:len(r.History)-1]; len(r.History) == 0 {
			r.History = nil
		}
	}
	return nil
}

// ForgetCreate records at now that a Create of unknown outcome made no job
// (the remote list shows none): the mark is cleared, the attempt ends
// requeued, and the distribution is queued for a new Create.
func (r *Record) ForgetCreate(now time.Time) error {
	if r.JobID != "" || r.State.Terminal() {
		return r.refuse("resubmitted", "an unfinished distribution without a job")
	}
	r.CreateSentAt = nil
	r.State = StateQueued
	r.closeAttempt(now, OutcomeRequeued, &Error{Code: CodeCreateLost,
		Message: "the Create's answer was lost and the remote shows no job made by it; a new Create follows"})
	r.note(now, "create_lost")
	return nil
}

// CodeCreateLost is the error code of an attempt whose Create's answer was
// lost and that made no job.
const CodeCreateLost = "create_lost"

// Wait shows why a queued distribution waits (Q3). It returns ErrNoChange
// when the record already says so, to spare a write.
func (r *Record) Wait(reason WaitReason) error {
	if r.State != StateQueued {
		return r.refuse("waiting", "a queued distribution")
	}
	if r.WaitReason == reason {
		return ErrNoChange
	}
	r.WaitReason = reason
	return nil
}

// ObserveRemote records the remote status of a running distribution's job.
func (r *Record) ObserveRemote(status int) error {
	if r.State.Terminal() {
		return r.refuse("observed", "an unfinished distribution")
	}
	changed := r.RemoteStatus == nil || *r.RemoteStatus != status
	r.RemoteStatus = &status
	if changed {
		r.note(time.Time{}, "remote_status")
	}
	return nil
}

// Finish ends an unfinished distribution at now in outcome (StateSucceeded
// or StateFailed), with the error that failed it and the job's last remote
// status when known.
func (r *Record) Finish(now time.Time, outcome State, e *Error, remoteStatus *int) error {
	if outcome != StateSucceeded && outcome != StateFailed {
		return fmt.Errorf("finish %s: outcome %q is not succeeded or failed", r.ID, outcome)
	}
	if r.State.Terminal() {
		return r.refuse("finished", "an unfinished distribution")
	}
	r.State, r.WaitReason, r.Error, r.FinishedAt, r.CreateSentAt = outcome, WaitNone, e, &now, nil
	if remoteStatus != nil {
		r.RemoteStatus = remoteStatus
	}
	r.closeAttempt(now, Outcome(outcome), e)
	r.note(now, "finished")
	return nil
}

// openAttempt is the attempt in progress, or nil.
func (r *Record) openAttempt() *Attempt {
	if n := len(r.History); n > 0 && r.History[n-1].Outcome == OutcomeInProgress {
		return &r.History[n-1]
	}
	return nil
}

// closeAttempt ends the attempt in progress at now with outcome and e.
// With none in progress, a final outcome of an attempt History does not
// show yet (a record written before History existed) is added; anything
// else is left as it is.
func (r *Record) closeAttempt(now time.Time, outcome Outcome, e *Error) {
	if a := r.openAttempt(); a != nil {
		a.FinishedAt, a.Outcome, a.Error = &now, outcome, e
		return
	}
	if outcome == OutcomeRequeued || r.Attempts == 0 {
		return
	}
	if n := len(r.History); n > 0 && r.History[n-1].Number >= r.Attempts {
		return
	}
	started := now
	if r.SubmittedAt != nil {
		started = *r.SubmittedAt
	}
	r.addAttempt(Attempt{Number: r.Attempts, StartedAt: started, FinishedAt: &now, Outcome: outcome, JobID: r.JobID, Error: e})
}

// addAttempt appends a to History, keeping the last MaxHistory.
func (r *Record) addAttempt(a Attempt) {
	r.History = append(r.History, a)
	if n := len(r.History); n > MaxHistory {
		r.History = append([]Attempt(nil), r.History[n-MaxHistory:]...)
	}
}

// finishedOr is when the record finished, or the zero time.
func (r *Record) finishedOr() time.Time {
	if r.FinishedAt != nil {
		return *r.FinishedAt
	}
	return time.Time{}
}
