package queue

import (
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/redistest"
	"github.com/distq/distq/internal/store"
)

// A task waiting in asynq's scheduled set (a batch item, or a task handed back
// with a WaitError) is moved to pending by the worker's in-process wake
// when its wait ends, long before asynq's forwarder would look, and wakes
// a quiet worker (whose busy server then runs it); of two wakes of one
// task, the sooner stands.
func TestWakeRunsTheWaitingTask(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	cl := asynq.NewClientFromRedisClient(db.Client)
	w := NewWorker(nil, nil, nil, nil, insp, cl, slog.New(slog.DiscardHandler), Options{})
	defer w.StopWakes()
	var woken atomic.Int64
	w.UseQuiet(func() bool { return woken.Load() == 0 }, func() { woken.Add(1) })
	enqueue := func(id string) {
		t.Helper()
		task, opts := submitTask(&store.Record{Distribution: distribution.Distribution{ID: id}, Queue: QueueBatch})
		if _, err := cl.Enqueue(task, append(opts, asynq.ProcessIn(time.Hour))...); err != nil {
			t.Fatal(err)
		}
	}
	state := func(id string) asynq.TaskState {
		t.Helper()
		info, err := insp.GetTaskInfo(QueueBatch, id)
		if err != nil {
			t.Fatal(err)
		}
		return info.State
	}
	enqueue("d_a")
	enqueue("d_b")
	w.wakeIn(QueueBatch, "d_a", 100*time.Millisecond)
	w.wakeIn(QueueBatch, "d_b", time.Hour)
	w.wakeIn(QueueBatch, "d_b", 30*time.Minute) // replaces the first
	w.wakeIn(QueueBatch, "d_b", 2*time.Hour)    // a later one does not
	deadline := time.Now().Add(5 * time.Second)
	for state("d_a") != asynq.TaskStatePending {
		if time.Now().After(deadline) {
			t.Fatalf("task d_a %v after 5s, want pending", state("d_a"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for woken.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // RunTask returned; the wake follows
	}
	if n := woken.Load(); n != 1 {
		t.Errorf("the worker was woken %d times, want once (d_a made runnable)", n)
	}
	if s := state("d_b"); s != asynq.TaskStateScheduled {
		t.Errorf("task d_b %v, want still scheduled (its wake is in 30 min)", s)
	}
	w.wakes.mu.Lock()
	at := w.wakes.timers[QueueBatch+"\x00"+"d_b"].at
	w.wakes.mu.Unlock()
	if left := time.Until(at); left > 30*time.Minute || left < 29*time.Minute {
		t.Errorf("d_b's wake in %v, want the sooner one (30 min)", left)
	}
	if n := w.pendingWakes(); n != 1 {
		t.Errorf("%d wakes pending, want 1 (d_b's)", n)
	}
	w.StopWakes()
	if n := w.pendingWakes(); n != 0 {
		t.Errorf("%d wakes pending after StopWakes", n)
	}
}
