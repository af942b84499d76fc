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
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/hibiken/asynq"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/store"
)

// Task types. They are stable names: never rename one in place.
const (
	TypeSubmit = "distribution:submit"
	TypePoll   = "distribution:poll"
)

// Queues, served in strict priority: polls first (they free slots), then
// single submissions (Q7: never stuck behind a batch), then batch items.
const (
	QueuePoll   = "poll"
	QueueSingle = distribution.QueueSingle
	QueueBatch  = distribution.QueueBatch
)

// Queues maps each queue to its priority for asynq.
var Queues = map[string]int{QueuePoll: 3, QueueSingle: 2, QueueBatch: 1}

// Payload is the payload of every distq task.
type Payload struct {
	ID string `json:"id"`
}

// pollTaskID is the asynq TaskID of a distribution's poll task.
func pollTaskID(id string) string { return "poll:" + id }

func submitTask(r *store.Record) (*asynq.Task, []asynq.Option) {
	raw, _ := json.Marshal(Payload{ID: r.ID})
	return asynq.NewTask(TypeSubmit, raw), []asynq.Option{
		asynq.TaskID(r.ID), asynq.Queue(r.Queue), asynq.MaxRetry(math.MaxInt32),
	}
}

func pollTask(id string) (*asynq.Task, []asynq.Option) {
	raw, _ := json.Marshal(Payload{ID: id})
	return asynq.NewTask(TypePoll, raw), []asynq.Option{
		asynq.TaskID(pollTaskID(id)), asynq.Queue(QueuePoll), asynq.MaxRetry(math.MaxInt32),
	}
}

// Enqueuer puts submit tasks on the queue, for the api. It is safe for
// concurrent use.
type Enqueuer struct {
	client *asynq.Client
}

// NewEnqueuer returns an Enqueuer on an asynq client.
func NewEnqueuer(c *asynq.Client) *Enqueuer { return &Enqueuer{client: c} }

// enqueueParallelism bounds the concurrent enqueues of one batch: asynq has
// no multi-task enqueue, so a batch is enqueued by a few goroutines at once.
const enqueueParallelism = 16

// Submit enqueues one submit task per record (TaskID = distribution id, so
// a repeat is harmless). It returns the first error; the caller undoes the
// records then. A task that already exists is not an error.
func (e *Enqueuer) Submit(ctx context.Context, recs []*store.Record) error {
	if len(recs) == 1 {
		return e.submitOne(ctx, recs[0])
	}
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		next  = make(chan *store.Record)
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(enqueueParallelism, len(recs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range next {
				if err := e.submitOne(ctx, r); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
feed:
	for _, r := range recs {
		select {
		case next <- r:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil && !errors.Is(ctx.Err(), context.Canceled) {
		first = ctx.Err()
	}
	return first
}

func (e *Enqueuer) submitOne(ctx context.Context, r *store.Record) error {
	t, opts := submitTask(r)
	_, err := e.client.EnqueueContext(ctx, t, opts...)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue %s: %w", r.ID, err)
	}
	return nil
}
