package queue

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/distq/distq/internal/redistest"
	"github.com/distq/distq/internal/store"
)

// The poll loop: polls due run at once in some worker and never in two at
// a time; a wait puts the poll back at its time, a failure backs it off, an
// ended job leaves the schedule; a run longer than the lease keeps its
// claim (renewed), and a worker that stops leaves its polls to the others.
func TestPollLoop(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	st := store.NewRedis(db.Client, time.Hour)
	log := slog.New(slog.DiscardHandler)
	opts := Options{PollLease: 300 * time.Millisecond, PollIdleCheck: 100 * time.Millisecond}

	var mu sync.Mutex
	runs := map[string]int{}
	active := map[string]bool{}
	var overlap []string
	work := func(ctx context.Context, id string, run int) error {
		mu.Lock()
		if active[id] {
			overlap = append(overlap, id)
		}
		active[id] = true
		runs[id]++
		n := runs[id]
		mu.Unlock()
		defer func() {
			mu.Lock()
			active[id] = false
			mu.Unlock()
		}()
		switch id {
		case "poll:wait": // waits twice, then ends
			if n < 3 {
				return &WaitError{Delay: 50 * time.Millisecond}
			}
		case "poll:fail": // fails once, then ends
			if n < 2 {
				return errors.New("remote down")
			}
		case "poll:slow": // one run three leases long, then ends
			time.Sleep(3 * opts.PollLease)
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range 2 {
		w := NewWorker(st, nil, nil, nil, nil, nil, log, opts)
		w.pollFunc = work
		wg.Go(func() { w.RunPolls(ctx) })
	}
	w := NewWorker(st, nil, nil, nil, nil, nil, log, opts)
	for _, id := range []string{"poll:wait", "poll:fail", "poll:slow", "poll:once"} {
		if err := w.schedulePoll(ctx, id, 0); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, _, err := st.PollSchedule(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			t.Fatalf("%d polls still scheduled after 10s; runs %v", n, runs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	want := map[string]int{"poll:wait": 3, "poll:fail": 2, "poll:slow": 1, "poll:once": 1}
	for id, n := range want {
		if runs[id] != n {
			t.Errorf("%s ran %d times, want %d (runs %v)", id, runs[id], n, runs)
		}
	}
	if len(overlap) > 0 {
		t.Errorf("polls run by two workers at once: %v", overlap)
	}
}
