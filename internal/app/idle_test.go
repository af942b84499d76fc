package app

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/distq/distq/internal/queue"
	"github.com/distq/distq/internal/redistest"
	"github.com/distq/distq/internal/store"
)

// The worker's quiet mode: it goes quiet only when no task is runnable or
// running anywhere (a task waiting for later, or a job being polled, does
// not keep it busy; a runnable task it cannot take does); a published wake
// makes it pick up a new task at once (not at its quiet task check, 1.5–4.5
// s here); a task the quiet server finds without a wake runs and wakes it
// too.
func TestQuietServer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rdb := redistest.New(t).Client
	var ran atomic.Int64
	handled := make(chan time.Time, 16)
	mux := asynq.NewServeMux()
	mux.HandleFunc(queue.TypeSubmit, func(context.Context, *asynq.Task) error {
		ran.Add(1)
		handled <- time.Now()
		return nil
	})
	s := &quietServer{
		newServer: func(check time.Duration) *asynq.Server {
			return asynq.NewServerFromRedisClient(rdb, asynq.Config{
				Concurrency: 2, Queues: queue.Queues, StrictPriority: true,
				TaskCheckInterval: check, LogLevel: asynq.ErrorLevel,
			})
		},
		handler:   mux,
		busyCheck: 100 * time.Millisecond,
		idleCheck: 3 * time.Second,
		idleAfter: time.Second,
		quiet:     nothingToDo(rdb),
		log:       slog.New(slog.DiscardHandler),
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	go s.Run(ctx, rdb)
	client := asynq.NewClientFromRedisClient(rdb)
	defer client.Close()
	insp := asynq.NewInspectorFromRedisClient(rdb)

	// A runnable task keeps the worker busy, even one it cannot take (its
	// queue paused by an operator).
	if err := insp.PauseQueue(queue.QueueBatch); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Enqueue(asynq.NewTask(queue.TypeSubmit, []byte(`{"id":"held"}`)), asynq.Queue(queue.QueueBatch), asynq.TaskID("held")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	if s.Quiet() {
		t.Fatal("quiet while a task is runnable")
	}
	if err := insp.DeleteTask(queue.QueueBatch, "held"); err != nil {
		t.Fatal(err)
	}
	if err := insp.UnpauseQueue(queue.QueueBatch); err != nil {
		t.Fatal(err)
	}
	// A task waiting for later, and a remote job being polled, do not
	// keep it busy: what makes the task runnable wakes a worker, and polls
	// run outside asynq.
	if _, err := client.Enqueue(asynq.NewTask(queue.TypeSubmit, []byte(`{"id":"later"}`)), asynq.Queue(queue.QueueBatch), asynq.ProcessIn(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := store.NewRedis(rdb, time.Hour).SchedulePoll(ctx, "poll:d_1", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, s.Quiet, "the worker to go quiet with no task to run")

	// A submission with its wake: picked up at once.
	at := time.Now()
	if _, err := client.Enqueue(asynq.NewTask(queue.TypeSubmit, []byte(`{"id":"a"}`)), asynq.Queue(queue.QueueSingle)); err != nil {
		t.Fatal(err)
	}
	rdb.Publish(ctx, queue.WorkChannel, "")
	select {
	case got := <-handled:
		if d := got.Sub(at); d > time.Second {
			t.Fatalf("woken task ran %v after its submission, want well under the quiet check", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a woken worker did not run the task in 5 s")
	}
	if s.Quiet() {
		t.Fatal("still quiet after a wake")
	}

	// No wake reaches it: the quiet server's own check finds the task,
	// and the worker wakes.
	waitFor(t, 5*time.Second, s.Quiet, "the worker to go quiet again")
	if _, err := client.Enqueue(asynq.NewTask(queue.TypeSubmit, []byte(`{"id":"b"}`)), asynq.Queue(queue.QueueBatch)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-handled:
	case <-time.After(8 * time.Second):
		t.Fatal("the quiet server did not run the task")
	}
	waitFor(t, 2*time.Second, func() bool { return !s.Quiet() }, "a task found while quiet to wake the worker")
	if n := ran.Load(); n != 2 {
		t.Fatalf("%d runs, want 2", n)
	}
}

// asynqQueueKeys names the keys asynq keeps a queue's tasks in.
func TestAsynqQueueKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.New(t).Client
	client := asynq.NewClientFromRedisClient(rdb)
	defer client.Close()
	if _, err := client.Enqueue(asynq.NewTask("x", nil), asynq.Queue(queue.QueueBatch)); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Enqueue(asynq.NewTask("x", nil), asynq.Queue(queue.QueueBatch), asynq.ProcessIn(time.Hour)); err != nil {
		t.Fatal(err)
	}
	pending, _, scheduled := asynqQueueKeys(queue.QueueBatch)
	for key, want := range map[string]int64{pending: 1, scheduled: 1} {
		n, err := rdb.Exists(ctx, key).Result()
		if err != nil || n != 1 {
			t.Fatalf("%s: exists %d, %v; want asynq's key", key, n, err)
		}
		var size int64
		if key == pending {
			size, err = rdb.LLen(ctx, key).Result()
		} else {
			size, err = rdb.ZCard(ctx, key).Result()
		}
		if err != nil || size != want {
			t.Fatalf("%s: %d tasks, %v; want %d", key, size, err, want)
		}
	}
	quiet, err := nothingToDo(rdb)(ctx)
	if err != nil || quiet {
		t.Fatalf("nothingToDo with tasks queued: %v, %v", quiet, err)
	}
}

func waitFor(t *testing.T, limit time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
