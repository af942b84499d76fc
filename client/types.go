package client

import (
	"encoding/json"
	"time"
)

// State is where a distribution is in its life:
// queued → submitting → running → succeeded | failed; queued → canceled.
type State string

// The states of a distribution.
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

// Terminal reports whether a distribution in state s is finished: nothing
// changes it any more by itself.
func (s State) Terminal() bool {
	return s == StateSucceeded || s == StateFailed || s == StateCanceled
}

// WaitReason says why a queued distribution waits: "rate_limit",
// "job_slots", "backoff", "fair_share" (other teams' turns first) or
// "paused" (by an operator).
type WaitReason string

// DistributionError is why a distribution failed: the remote's Code and
// message verbatim, or distq's own code.
type DistributionError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// RequestID is the remote's RequestId.
	RequestID string `json:"request_id,omitempty"`
}

// Outcome is how an attempt ended: "in_progress" (its Create was sent and
// its job has not finished), "succeeded", "failed", or "requeued" (it made
// no job, and the distribution went back to the queue).
type Outcome string

// Outcomes of an attempt.
const (
	OutcomeInProgress Outcome = "in_progress"
	OutcomeSucceeded  Outcome = "succeeded"
	OutcomeFailed     Outcome = "failed"
	OutcomeRequeued   Outcome = "requeued"
)

// Attempt is one attempt at a remote job: from its Create to the job's end,
// or to the error that put the distribution back in the queue.
type Attempt struct {
	// Number is the attempt's place in the distribution's life, from 1.
	Number     int        `json:"number"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Outcome    Outcome    `json:"outcome"`
	// JobID is the remote job the attempt made, if it made one.
	JobID string `json:"job_id,omitempty"`
	// Error is why the attempt failed or was requeued, with the remote's
	// RequestId when the remote answered.
	Error *DistributionError `json:"error,omitempty"`
}

// Distribution is one distribution of one product to another instance, as
// the API shows it. Attempts counts every attempt at a remote job,
// retries included; History lists the last 20, oldest first: the errors
// of earlier attempts stay there after a retry.
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
	// JobID is the remote job's JobId, once created.
	JobID string `json:"job_id,omitempty"`
	// RemoteStatus is the remote job's Status: 0 initializing, 1 running,
	// 2 completed, 3 interrupted.
	RemoteStatus *int               `json:"remote_status,omitempty"`
	Attempts     int                `json:"attempts"`
	Error        *DistributionError `json:"error,omitempty"`
	History      []Attempt          `json:"history,omitempty"`
	CreatedAt    time.Time          `json:"created_at"`
	SubmittedAt  *time.Time         `json:"submitted_at,omitempty"`
	FinishedAt   *time.Time         `json:"finished_at,omitempty"`
	UpdatedAt    time.Time          `json:"updated_at"`
	// NotifyURL receives a signed distribution.finished event when this
	// single distribution ends.
	NotifyURL string `json:"notify_url,omitempty"`
}

// DistributionRequest is the body of a single submission: the product, the
// source and target instances, and optionally the account and the target
// account. Leave Account empty for the server's default account.
type DistributionRequest struct {
	Account          string `json:"account,omitempty"`
	ProductKey       string `json:"product_key"`
	SourceInstanceID string `json:"source_instance_id"`
	TargetInstanceID string `json:"target_instance_id"`
	TargetUID        string `json:"target_uid,omitempty"`
	TargetAliyunID   string `json:"target_aliyun_id,omitempty"`
	// NotifyURL receives a signed distribution.finished event when the
	// distribution ends (single submissions only; a batch has its own).
	NotifyURL string `json:"notify_url,omitempty"`
}

// FillFrom sets every empty field of r from d: what the server does with a
// batch item and the batch's top-level fields.
func (r *DistributionRequest) FillFrom(d DistributionRequest) {
	fill := func(dst *string, src string) {
		if *dst == "" {
			*dst = src
		}
	}
	fill(&r.Account, d.Account)
	fill(&r.ProductKey, d.ProductKey)
	fill(&r.SourceInstanceID, d.SourceInstanceID)
	fill(&r.TargetInstanceID, d.TargetInstanceID)
	fill(&r.TargetUID, d.TargetUID)
	fill(&r.TargetAliyunID, d.TargetAliyunID)
}

// BatchItem is one item of a batch: the fields it leaves empty come from
// the batch's top level.
type BatchItem struct {
	Account          string `json:"account,omitempty"`
	ProductKey       string `json:"product_key,omitempty"`
	SourceInstanceID string `json:"source_instance_id,omitempty"`
	TargetInstanceID string `json:"target_instance_id,omitempty"`
	TargetUID        string `json:"target_uid,omitempty"`
	TargetAliyunID   string `json:"target_aliyun_id,omitempty"`
}

// BatchRequest is the body of a batch submission: 1 to 10,000 items, and
// top-level fields that fill every field an item leaves out.
type BatchRequest struct {
	Items            []BatchItem `json:"items"`
	Account          string      `json:"account,omitempty"`
	ProductKey       string      `json:"product_key,omitempty"`
	SourceInstanceID string      `json:"source_instance_id,omitempty"`
	TargetInstanceID string      `json:"target_instance_id,omitempty"`
	TargetUID        string      `json:"target_uid,omitempty"`
	TargetAliyunID   string      `json:"target_aliyun_id,omitempty"`
	// NotifyURL receives a signed batch.finished event once every item is
	// final.
	NotifyURL string `json:"notify_url,omitempty"`
}

// Batch is a batch as the API shows it: its items' counts per state,
// whether it is done, and when it should be.
type Batch struct {
	ID      string `json:"id"`
	Team    string `json:"team"`
	Account string `json:"account"`
	// Size is the number of distributions in the batch (items refused at
	// submission are not counted).
	Size      int       `json:"size"`
	CreatedAt time.Time `json:"created_at"`
	// NotifyURL receives the batch's batch.finished event.
	NotifyURL string `json:"notify_url,omitempty"`
	// Counts holds every state, zero or not.
	Counts map[State]int `json:"counts"`
	// Done: every item is in a final state.
	Done bool `json:"done"`
	// ETA is when the batch should be done, from the backlog ahead of it
	// and the account's limits; nil when done or paused.
	ETA *time.Time `json:"eta,omitempty"`
	// Paused: an operator paused the account or the team (no ETA then).
	Paused bool `json:"paused,omitempty"`
	// Share is the team's share of the account while the batch waits;
	// absent when done.
	Share *Share `json:"share,omitempty"`
	// Notification is the batch.finished event and its delivery state,
	// once the batch is done (with a notify_url).
	Notification *Notification `json:"notification,omitempty"`
}

// Share is a team's share of an account's Creates and job slots, which
// distq divides between the teams with a backlog by weight.
type Share struct {
	// Weight is the team's weight.
	Weight int `json:"weight"`
	// Entitled is the fraction the team gets while the teams with a
	// backlog now keep one: its weight over theirs (1 when alone).
	Entitled float64 `json:"entitled"`
	// Recent is the fraction of the account's Creates the team sent over
	// the last minute.
	Recent float64 `json:"recent"`
}

// Notification is a completion event's delivery state.
type Notification struct {
	EventID       string     `json:"event_id"`
	Type          string     `json:"type"`
	State         string     `json:"state"`
	Attempts      int        `json:"attempts"`
	CreatedAt     time.Time  `json:"created_at"`
	LastAttemptAt *time.Time `json:"last_attempt_at,omitempty"`
	LastStatus    int        `json:"last_status,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	NextRetryAt   *time.Time `json:"next_retry_at,omitempty"`
	DeliveredAt   *time.Time `json:"delivered_at,omitempty"`
}

// ItemResult is the outcome of one batch item: ID when it was accepted,
// else Error (and ExistingID for a duplicate of the team's own active
// distribution; another team's is never named).
type ItemResult struct {
	// Index is the item's position in the request's items.
	Index      int    `json:"index"`
	ID         string `json:"id,omitempty"`
	ExistingID string `json:"existing_id,omitempty"`
	Error      *Error `json:"error,omitempty"`
}

// BatchCreated is the answer of a batch submission.
type BatchCreated struct {
	Batch    Batch `json:"batch"`
	Accepted int   `json:"accepted"`
	Rejected int   `json:"rejected"`
	// Results has one entry per item, in order.
	Results []ItemResult `json:"results"`
}

// BatchActionResult is the answer of a batch cancel or retry.
type BatchActionResult struct {
	BatchID string `json:"batch_id"`
	Changed int    `json:"changed"`
	// Skipped counts items that changed state meanwhile (or, on retry, whose
	// product another distribution now holds).
	Skipped int `json:"skipped"`
	// Affected lists the ids that changed.
	Affected []string `json:"affected"`
}

// Page is one page of a distribution list. Pass NextCursor as
// ListOptions.Cursor for the next page; it is empty on the last.
type Page struct {
	Items      []Distribution `json:"items"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

// FieldError is one field's problem in an error's details.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ExistingRef names the active distribution that made a submission a
// duplicate, in an error's details.
type ExistingRef struct {
	ExistingID string `json:"existing_id"`
}

// OtherTeamRef is the detail of a duplicate whose active distribution is
// another team's: when it was created, never its id.
type OtherTeamRef struct {
	OtherTeam bool      `json:"other_team"`
	Since     time.Time `json:"since"`
}

// errorBody is the body of every error answer.
type errorBody struct {
	Error *Error `json:"error"`
}

// details decodes e's details into a list of T, skipping entries that are
// not T's shape; nil when there are none.
func details[T any](raw json.RawMessage) []T {
	var ds []json.RawMessage
	if json.Unmarshal(raw, &ds) != nil {
		return nil
	}
	var out []T
	for _, d := range ds {
		var v T
		if json.Unmarshal(d, &v) == nil {
			out = append(out, v)
		}
	}
	return out
}
