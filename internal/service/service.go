// Package service holds distq's use cases, the one place where the rules of
// a distribution's life are applied for a team: submit one distribution or
// a batch, read and list them, wait for a change, cancel and retry (one or
// a whole batch), a batch's counts and ETA, and Idempotency-Key handling.
//
// Every front door (the REST API today, a console or webhooks tomorrow)
// decodes its input, calls a Service method and presents the result; the
// Service works through small interfaces (Store, IdempotencyStore,
// Enqueuer, Changes) that the adapters satisfy and internal/app wires, so it
// imports no adapter. Its failures are *Error values with a Code that a
// front door maps once to its own statuses. The quota rules it relies on
// (Q1…Q7) are defined in docs/QUOTA.md.
package service

import (
	"context"
	"log/slog"
	"time"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/metrics"
)

// Store keeps the records (internal/store's *Redis satisfies it).
type Store interface {
	Get(ctx context.Context, id string) (*distribution.Record, error)
	GetMany(ctx context.Context, ids []string) ([]*distribution.Record, error)
	Insert(ctx context.Context, b *distribution.Batch, recs []*distribution.Record) ([]distribution.Claim, error)
	// DeleteIfUntouched deletes the records still queued and never acted
	// on (the undo after a failed enqueue); it returns the ids it kept.
	DeleteIfUntouched(ctx context.Context, recs []*distribution.Record) (kept []string, err error)
	DeleteBatch(ctx context.Context, b *distribution.Batch) error
	// Update runs fn, a transition, on the record of id under compare-and-set.
	Update(ctx context.Context, id string, fn func(r *distribution.Record) error) (*distribution.Record, error)
	ActiveOwner(ctx context.Context, uid, pk, target string) (string, error)
	List(ctx context.Context, f distribution.Filter) ([]*distribution.Record, string, error)
	GetBatch(ctx context.Context, id string) (*distribution.BatchStatus, error)
	BatchItemIDs(ctx context.Context, id string) ([]string, error)
	CountOpenBefore(ctx context.Context, t time.Time) (int64, error)
	JobDuration(ctx context.Context, uid string) (time.Duration, error)
}

// IdempotencyStore keeps Idempotency-Keys and their answers.
type IdempotencyStore interface {
	ClaimIdempotency(ctx context.Context, team, key, bodyHash string) (*distribution.Idempotent, error)
	// KeepIdempotency keeps a claim made by ClaimIdempotency alive (its
	// in-progress TTL is short) until stop is called.
	KeepIdempotency(ctx context.Context, team, key, bodyHash string) (stop func())
	CompleteIdempotency(ctx context.Context, team, key, bodyHash string, status int, response []byte) error
	AbandonIdempotency(ctx context.Context, team, key string) error
}

// Enqueuer puts the submit tasks of new records on the queue.
type Enqueuer interface {
	Submit(ctx context.Context, recs []*distribution.Record) error
}

// Changes tells when a record changes, for long polls.
type Changes interface {
	Watch(id string) (<-chan struct{}, func())
	Run(ctx context.Context)
}

// Account is what the use cases need of an account: its name, its UID (the
// quota key and part of the duplicate key) and the limits a batch's ETA is
// computed from. internal/app builds it from the configuration.
type Account struct {
	Name string
	UID  string
	// AliyunID is the account's logon name: the only target_aliyun_id a
	// request may name; empty refuses every target_aliyun_id.
	AliyunID  string
	CreateQPS int
	MaxJobs   int
	// Default marks the account of requests that name none (else the first).
	Default bool
}

// Deps is what a Service works with.
type Deps struct {
	Store       Store
	Idempotency IdempotencyStore
	Enqueuer    Enqueuer
	Changes     Changes
	// Figures and Slots feed the console's views (optional: without them
	// those views are empty).
	Figures Figures
	Slots   Slots
	// Controls keeps the operators' overrides (the admin use cases need
	// it; without it they answer CodeUnavailable). When set, the console's
	// account view shows the limits in force.
	Controls Controls
	// Backlogs tells each team's backlog in an account's queue, for the
	// admin view (optional: without it the view leaves backlogs out).
	Backlogs Backlogs
	// Teams names the teams of the api's tokens, for the admin view.
	Teams []string
	// Canceler removes the queued task of a canceled distribution, and a
	// batch item's entry in its account's fair queue (optional, best
	// effort: the worker skips a canceled record anyway, but a canceled
	// batch's entries would each take a turn first).
	Canceler func(ctx context.Context, r *distribution.Record) error
	Accounts []Account
	// Devices keeps and enqueues device distributions (devices.go).
	Devices DeviceDeps
	// Webhooks: who may set a notify_url, where to, and the events.
	Webhooks Webhooks
	Metrics  *metrics.Metrics
	Log      *slog.Logger
	// Now is the clock (default: time.Now in UTC).
	Now func() time.Time
	// FairQueue is the accounts' fair queues between teams (optional:
	// without it, ETAs count every open distribution ahead).
	FairQueue FairQueue
	// Weight is a team's weight in the fair share, now (nil: 1 for all).
	Weight func(ctx context.Context, team string) int
	// Limits are an account's Create rate and job limit now, as operators
	// may have changed them (nil: the Account's).
	Limits func(ctx context.Context, account string) (createQPS, maxJobs int)
	// Paused reports whether an operator paused the account (team "") or
	// the team on it (nil: never); queued distributions then show
	// wait_reason paused.
	Paused func(ctx context.Context, account, team string) bool
	// JobDurationHint is the remote job duration ETAs assume while none
	// has been observed for the account (0: none, and only the Create rate
	// bounds an ETA until one is).
	JobDurationHint time.Duration
}

// Service runs the use cases. It is safe for concurrent use. Its
// dependencies stay private: a front door reaches the store only through a
// use case.
type Service struct {
	d Deps
}

// New returns a Service on d.
func New(d Deps) *Service {
	if d.Now == nil {
		d.Now = func() time.Time { return time.Now().UTC() }
	}
	return &Service{d: d}
}

// Run follows the store's changes for Await until ctx ends.
func (s *Service) Run(ctx context.Context) { s.d.Changes.Run(ctx) }

// account returns the named account, or the default one for "".
func (s *Service) account(name string) (Account, bool) {
	if len(s.d.Accounts) == 0 {
		return Account{}, false
	}
	for _, a := range s.d.Accounts {
		if name == "" && a.Default || name != "" && a.Name == name {
			return a, true
		}
	}
	if name == "" {
		return s.d.Accounts[0], true
	}
	return Account{}, false
}
