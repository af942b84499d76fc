// Package distribution holds distq's domain: what a distribution and a batch
// are, the states a distribution moves through and the named transitions
// between them, ids, and how a request for one is validated. It imports no
// adapter; the Redis store, the Alibaba client, the queue, the use cases
// and the HTTP API all speak in its terms. The quota invariants its
// comments tag (Q1…Q7) are defined in docs/QUOTA.md.
package distribution

import (
	"time"
)

// State is where a distribution is in its life.
type State string

// The states of a distribution. queued → submitting → running → succeeded |
// failed; queued → canceled.
const (
	StateQueued     State = "queued"
	StateSubmitting State = "submitting"
	StateRunning    State = "running"
	StateSucceeded  State = "succeeded"
	StateFailed     State = "failed"
	StateCanceled   State = "canceled"
)

// States lists every state in life order.
var States = []State{StateQueued, StateSubmitting, StateRunning, StateSucceeded, StateFailed, StateCanceled}

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// Terminal reports whether no further change happens by itself in state s.
func (s State) Terminal() bool {
	return s == StateSucceeded || s == StateFailed || s == StateCanceled
}

// Active reports whether a distribution in state s still holds or may take
// a remote job.
func (s State) Active() bool { return s.Valid() && !s.Terminal() }

// WaitReason says why a queued distribution is waiting.
type WaitReason string

// Wait reasons of a queued distribution.
const (
	WaitNone      WaitReason = ""
	WaitRateLimit WaitReason = "rate_limit"
	WaitJobSlots  WaitReason = "job_slots"
	WaitBackoff   WaitReason = "backoff"
	// WaitFairShare: other teams' turns come first (fair share of the
	// account between teams, docs/QUOTA.md).
	WaitFairShare WaitReason = "fair_share"
	// WaitPaused: an operator paused the account or the team.
	WaitPaused WaitReason = "paused"
)

// Remote job statuses of QueryDeviceDistributeJob.
const (
	RemoteInitializing = 0
	RemoteRunning      = 1
	RemoteCompleted    = 2
	RemoteInterrupted  = 3
)

// Error is the failure recorded on a distribution: the remote Code and
// ErrorMessage verbatim when the remote refused, or distq's own code.
type Error struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

// Outcome is how an attempt ended.
type Outcome string

// Outcomes of an attempt.
const (
	// OutcomeInProgress: the attempt's Create was sent and its job (if
	// any) has not finished.
	OutcomeInProgress Outcome = "in_progress"
	// OutcomeSucceeded, OutcomeFailed: the distribution ended with this
	// attempt.
	OutcomeSucceeded Outcome = "succeeded"
	OutcomeFailed    Outcome = "failed"
	// OutcomeRequeued: the attempt made no job (a transient error, or a
	// Create whose answer was lost and whose job the remote does not
	// show) and the distribution went back to the queue.
	OutcomeRequeued Outcome = "requeued"
)

// MaxHistory bounds Distribution.History: older attempts are dropped (they
// still count in Attempts).
const MaxHistory = 20

// Attempt is one attempt at a remote job: from the Create sent to the
// job's end, or to the error that put the distribution back in the queue.
type Attempt struct {
	// Number is the attempt's place in the distribution's life, from 1.
	Number     int        `json:"number"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Outcome    Outcome    `json:"outcome"`
	// JobID is the remote job the attempt made, when it made one.
	JobID string `json:"job_id,omitempty"`
	// Error is why the attempt failed or was requeued: the remote's Code,
	// message and RequestId, or distq's own code.
	Error *Error `json:"error,omitempty"`
}

// Distribution is one request to distribute one product. Attempts counts
// every attempt at a remote job over its life, retries included; History
// lists the last MaxHistory of them, oldest first, so that a retried
// distribution keeps the errors of its earlier attempts.
type Distribution struct {
	ID               string     `json:"id"`
	Team             string     `json:"team"`
	Account          string     `json:"account"`
	BatchID          string     `json:"batch_id,omitempty"`
	ProductKey       string     `json:"product_key"`
	SourceInstanceID string     `json:"source_instance_id"`
	TargetInstanceID string     `json:"target_instance_id"`
	TargetUID        string     `json:"target_uid,omitempty"`
	TargetAliyunID   string     `json:"target_aliyun_id,omitempty"`
	State            State      `json:"state"`
	WaitReason       WaitReason `json:"wait_reason,omitempty"`
	JobID            string     `json:"job_id,omitempty"`
	RemoteStatus     *int       `json:"remote_status,omitempty"`
	Attempts         int        `json:"attempts"`
	Error            *Error     `json:"error,omitempty"`
	History          []Attempt  `json:"history,omitempty"`
	CreatedAt        time.Time  `json:"created_at"`
	SubmittedAt      *time.Time `json:"submitted_at,omitempty"`
	FinishedAt       *time.Time `json:"finished_at,omitempty"`
	UpdatedAt        time.Time  `json:"updated_at"`
	// NotifyURL receives a distribution.finished event when it ends (a
	// single distribution only: a batch's items are announced by the
	// batch's own event).
	NotifyURL string `json:"notify_url,omitempty"`
}

// Batch groups distributions submitted together.
type Batch struct {
	ID        string    `json:"id"`
	Team      string    `json:"team"`
	Account   string    `json:"account"`
	Size      int       `json:"size"`
	CreatedAt time.Time `json:"created_at"`
	// NotifyURL receives a batch.finished event once every item is final.
	NotifyURL string `json:"notify_url,omitempty"`
}
