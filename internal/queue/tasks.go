// Package queue carries distributions through asynq: the task types and
// payloads, the api's enqueuing, the worker's handlers that submit a
// distribution to the endpoint and poll its job, and the reconciler that
// repairs what a crash left behind. It is where the quota rules (Q1–Q7,
// defined in docs/QUOTA.md) meet the remote: every call goes through a
// shared rate grant, every Create through a leased job slot, and every wait
// is a wait, not a failure. Records change only through the domain's named
// transitions (distribution.Record's StartSubmit, Started, Finish…).
package queue

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/quota"
	"github.com/distq/distq/internal/store"
)

// Task types. They are stable names: never rename one in place.
const TypeSubmit = "distribution:submit"

// Queues, served in strict priority: single submissions first (Q7: never
// stuck behind a batch), then batch items. Running jobs are not polled
// through a queue but from the poll schedule (pollsched.go).
const (
	QueueSingle = distribution.QueueSingle
	QueueBatch  = distribution.QueueBatch
)

// QueuePoll is the queue earlier versions polled running jobs through; the
// reconciler moves what is left in it to the poll schedule and deletes it.
const QueuePoll = "poll"

// Queues maps each queue to its priority for asynq.
var Queues = map[string]int{QueueSingle: 2, QueueBatch: 1}

// Payload is the payload of every distq task.
type Payload struct {
	ID string `json:"id"`
}

// pollTaskID is the id of a distribution's poll in the poll schedule (and
// was its poll task's asynq TaskID).
func pollTaskID(id string) string { return "poll:" + id }

func submitTask(r *store.Record) (*asynq.Task, []asynq.Option) {
	raw, _ := json.Marshal(Payload{ID: r.ID})
	return asynq.NewTask(TypeSubmit, raw), []asynq.Option{
		asynq.TaskID(r.ID), asynq.Queue(r.Queue), asynq.MaxRetry(math.MaxInt32),
	}
}

// Enqueuer puts submit tasks on the queue, for the api. It is safe for
// concurrent use.
type Enqueuer struct {
	client   *asynq.Client
	limiter  *quota.Limiter
	fallback time.Duration
	wake     redis.UniversalClient // nil: workers are not told
}

// WorkChannel is the Pub/Sub channel on which the api tells the workers
// that it queued tasks: a quiet worker, which looks for tasks seldom,
// starts looking at once (see app's idle mode).
const WorkChannel = "distq:work"

// WakeWorkers makes the Enqueuer publish on WorkChannel, through rdb,
// after it queued tasks.
func (e *Enqueuer) WakeWorkers(rdb redis.UniversalClient) { e.wake = rdb }

// wakeWorkers tells the workers that tasks were queued. Best effort: a
// quiet worker finds them at its next, slower, look.
func (e *Enqueuer) wakeWorkers(ctx context.Context) {
	if e.wake != nil {
		e.wake.Publish(context.WithoutCancel(ctx), WorkChannel, "")
	}
}

// NewEnqueuer returns an Enqueuer on an asynq client. Batch items go to
// their account's fair queue through lim (see Submit); fallback is the
// workers' Options.FairFallback (0: its default).
func NewEnqueuer(c *asynq.Client, lim *quota.Limiter, fallback time.Duration) *Enqueuer {
	return &Enqueuer{client: c, limiter: lim, fallback: cmp.Or(fallback, Options{}.withDefaults().FairFallback)}
}

// enqueueParallelism bounds the concurrent enqueues of one batch: asynq has
// no multi-task enqueue, so a batch is enqueued by a few goroutines at once.
const enqueueParallelism = 16

// Submit enqueues one submit task per record (TaskID = distribution id, so
// a repeat is harmless). It returns the first error; the caller undoes the
// records then. A task that already exists is not an error.
//
// A batch item's task is scheduled FairFallback ahead and the item queued
// in its account's fair queue: workers admit batch items in fair order
// between teams and run their tasks then, so a batch of thousands never
// stands in asynq's pending list in front of another team's items. The
// first item of each call is pending at once, so that a worker admits
// promptly (its run admits whoever is next). A lost fair-queue entry
// costs its item only the fallback delay.
//
// Order matters: the scheduled tasks first (an admission wakes a task), then
// the fair-queue entries, then the first task: were it pending before its
// entry existed, its run could end before the entry was written, which
// would then wait for an item already sent.
func (e *Enqueuer) Submit(ctx context.Context, recs []*store.Record) error {
	defer e.wakeWorkers(ctx)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(enqueueParallelism)
	for _, r := range recs[1:] {
		if gctx.Err() != nil {
			break // an enqueue failed, or the caller left: the caller undoes every record
		}
		g.Go(func() error { return e.submitOne(gctx, r, false) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err // records left unqueued when the caller's context ended
	}
	if err := e.fairQueue(ctx, recs); err != nil {
		return err
	}
	if len(recs) > 0 {
		return e.submitOne(ctx, recs[0], true)
	}
	return nil
}

// Cancel removes a canceled distribution's queued task and, for a batch
// item, its entry in the account's fair queue: the entries of a canceled
// batch of thousands would otherwise each take a turn before the next
// team's items. Safe for concurrent use.
func (e *Enqueuer) Cancel(ctx context.Context, insp *asynq.Inspector, r *store.Record) error {
	err := insp.DeleteTask(r.Queue, r.ID)
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		err = nil
	}
	if r.Queue == QueueBatch {
		if _, ferr := e.limiter.FairDone(ctx, r.UID, fairItem(r)); ferr != nil {
			err = errors.Join(err, ferr)
		}
	}
	return err
}

// fairQueue queues the batch items of recs in their accounts' fair queues,
// after their tasks exist (an admission wakes a task).
func (e *Enqueuer) fairQueue(ctx context.Context, recs []*store.Record) error {
	byUID := map[string][]quota.FairItem{}
	for _, r := range recs {
		if r.Queue == QueueBatch {
			byUID[r.UID] = append(byUID[r.UID], fairItem(r))
		}
	}
	for uid, items := range byUID {
		if err := e.limiter.FairEnqueueAll(ctx, uid, items, time.Minute); err != nil {
			return err
		}
	}
	return nil
}

func (e *Enqueuer) submitOne(ctx context.Context, r *store.Record, first bool) error {
	t, opts := submitTask(r)
	if r.Queue == QueueBatch && !first {
		opts = append(opts, asynq.ProcessIn(e.fallback))
	}
	_, err := e.client.EnqueueContext(ctx, t, opts...)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue %s: %w", r.ID, err)
	}
	return nil
}
