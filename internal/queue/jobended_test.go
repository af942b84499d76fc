package queue

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/distq/distq/internal/config"
	"github.com/distq/distq/internal/redistest"
	"github.com/distq/distq/internal/store"
)

// A job's duration is the midpoint between the last Query that found it
// running and the one that found it ended, even when the two ran in
// different workers: the poll loop keeps the running Query's time with the
// poll. (Before, the worker that saw the end guessed it a poll interval
// back, and every multi-worker estimate came out short.)
func TestJobEndedUsesAnotherWorkersRunningQuery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := store.NewRedis(redistest.New(t).Client, time.Hour)
	now := time.Now().UTC().Truncate(time.Millisecond)
	newWorker := func() *Worker {
		w := NewWorker(st, nil, nil, nil, nil, nil, slog.New(slog.DiscardHandler), Options{})
		w.now = func() time.Time { return now }
		return w
	}
	w1, w2 := newWorker(), newWorker()
	submitted := now.Add(-10 * time.Second)
	running := func(uid, pk string) *store.Record { return insertRunning(t, st, uid, pk, submitted, now) }

	// w1's poll finds the job running 200 ms before now and writes its
	// next due time as the poll loop does.
	r := running("1", "pk1")
	w1.pollFunc = func(context.Context, string, int) error {
		return &WaitError{Delay: 300 * time.Millisecond, ranAt: now.Add(-200 * time.Millisecond)}
	}
	w1.runPoll(ctx, pollTaskID(r.ID))
	// w2's Query, asked now, finds it ended: the end is 100 ms before now.
	w2.jobEnded(ctx, &Account{Account: config.Account{Name: "a", UID: "1"}}, r, now)
	if d, err := st.JobDuration(ctx, "1"); err != nil || d != 9900*time.Millisecond {
		t.Fatalf("job duration %v (%v), want 9.9s: the midpoint of w1's running Query and w2's ended one", d, err)
	}

	// Without any running Query known, the end is counted a poll interval
	// (or an eighth of the age) before the ended Query.
	r = running("2", "pk2")
	w2.jobEnded(ctx, &Account{Account: config.Account{Name: "b", UID: "2"}}, r, now)
	want := 10*time.Second - max(w2.opts.PollInterval, 10*time.Second/8)/2
	if d, err := st.JobDuration(ctx, "2"); err != nil || d != want {
		t.Fatalf("job duration %v (%v), want %v", d, err, want)
	}
}
