package distribution

import (
	"encoding/json"
	"errors"
	"time"
)

// Record is a distribution with what the service keeps beside it. It is
// what the store saves and what the use cases and the worker change, only
// through the transitions in transition.go.
type Record struct {
	Distribution
	// UID is the account's UID (the quota key).
	UID string `json:"uid"`
	// Queue is the queue of its submit task: QueueSingle or QueueBatch.
	Queue string `json:"queue"`
	// CreateSentAt is set just before a Create is sent and cleared when its
	// outcome is known; set on a record without job id, it means a Create of
	// unknown outcome that must be looked up before another is sent (Q5).
	CreateSentAt *time.Time `json:"create_sent_at,omitempty"`
	// RetryBase is Attempts at the last Retry: the attempts of the current
	// run are Attempts - RetryBase (RunAttempts), which bound transient
	// errors, while Attempts counts the distribution's whole life.
	RetryBase int `json:"retry_base,omitempty"`
	// Timeline is the distribution's timeline, oldest first: one Step per
	// transition that moved it (and per change of its job's remote
	// status), at most MaxTimeline.
	Timeline []Step `json:"timeline,omitempty"`
}

// Step is one step of a distribution's timeline.
type Step struct {
	// At is when it happened; a transition that is not given the time
	// leaves it zero and Touch fills it in.
	At    time.Time `json:"at"`
	State State     `json:"state"`
	// What names the transition: "accepted", "create_sent", "started",
	// "requeued", "create_lost", "remote_status", "finished", "canceled",
	// "retried".
	What         string     `json:"what"`
	JobID        string     `json:"job_id,omitempty"`
	RemoteStatus *int       `json:"remote_status,omitempty"`
	WaitReason   WaitReason `json:"wait_reason,omitempty"`
	Attempt      int        `json:"attempt,omitempty"`
}

// MaxTimeline bounds a record's timeline; the oldest steps after the first
// make room for new ones.
const MaxTimeline = 50

// note adds a step of what to the timeline, in the record's new state.
func (r *Record) note(at time.Time, what string) {
	st := Step{At: at, State: r.State, What: what, JobID: r.JobID, WaitReason: r.WaitReason}
	if r.RemoteStatus != nil {
		v := *r.RemoteStatus
		st.RemoteStatus = &v
	}
	if what == "create_sent" {
		st.Attempt = r.Attempts
	}
	if len(r.Timeline) >= MaxTimeline {
		r.Timeline = append(r.Timeline[:1], r.Timeline[len(r.Timeline)-MaxTimeline+2:]...)
	}
	r.Timeline = append(r.Timeline, st)
}

// Accepted starts the timeline of a new record at its creation.
func (r *Record) Accepted() { r.note(r.CreatedAt, "accepted") }

// Touch marks the record changed at now, the time of the steps that
// transitions added without one. The store calls it on every write.
func (r *Record) Touch(now time.Time) {
	r.UpdatedAt = now
	for i := len(r.Timeline) - 1; i >= 0 && r.Timeline[i].At.IsZero(); i-- {
		r.Timeline[i].At = now
	}
}

// RunAttempts is the number of attempts since the distribution was last
// submitted or retried.
func (r *Record) RunAttempts() int { return r.Attempts - r.RetryBase }

// Queues of submit tasks, served in strict priority: a single submission is
// never stuck behind a batch (Q7).
const (
	QueueSingle = "single"
	QueueBatch  = "batch"
)

// Errors the store returns, declared here so that the use cases recognise
// them without importing the store.
var (
	// ErrNotFound: no record (or batch) with that id.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the record changed under a compare-and-set update too
	// many times in a row; the caller may try again.
	ErrConflict = errors.New("record changed concurrently")
	// ErrNoChange, returned by a transition (or any function given to the
	// store's Update), leaves the record as it is: it already is so.
	ErrNoChange = errors.New("no change")
	// ErrIdempotencyInFlight: another request with the same Idempotency-Key
	// has not finished.
	ErrIdempotencyInFlight = errors.New("a request with this Idempotency-Key is in progress")
)

// Claim is the result of claiming the active key of one new record.
type Claim struct {
	Record *Record
	// Existing is the id of the active distribution of the same product to
	// the same target, when there is one; Record was not claimed then.
	Existing string
	// ExistingTeam and ExistingCreatedAt describe Existing when the store
	// read its record (else the use cases look it up): another team's
	// conflict is answered without its id.
	ExistingTeam      string
	ExistingCreatedAt time.Time
}

// Filter narrows a listing of one team's distributions.
type Filter struct {
	Team       string
	State      State
	BatchID    string
	ProductKey string
	// After is the cursor: the last id of the previous page.
	After string
	Limit int
}

// BatchStatus is a batch with its counts per state.
type BatchStatus struct {
	Batch
	Counts map[State]int
}

// Idempotent is what is kept under an Idempotency-Key: the hash of the
// request and, once the first request finished, its answer as the front
// door encoded it.
type Idempotent struct {
	BodyHash string          `json:"body_hash"`
	Status   int             `json:"status,omitempty"`
	Response json.RawMessage `json:"response,omitempty"`
}
