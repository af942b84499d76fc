package queue

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/distq/distq/internal/redistest"
	"github.com/distq/distq/internal/store"
)

// A handler waiting in place for a slot goes on when the slot is handed to
// it: signalled in-process by its own worker, or over Pub/Sub by another;
// one not handed a slot gives up after its wait; a worker holds at most
// Options.InlineSlotWaits such handlers.
func TestHandoffWakesAWaitingHandler(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	st := store.NewRedis(db.Client, time.Hour)
	log := slog.New(slog.DiscardHandler)
	a := NewWorker(st, nil, nil, nil, nil, nil, log, Options{InlineSlotWaits: 4})
	b := NewWorker(st, nil, nil, nil, nil, nil, log, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.RunHandoffs(ctx)

	// In-process.
	got := make(chan bool, 1)
	go func() { got <- a.awaitHandoff(ctx, "d_1", 10*time.Second) }()
	waitFor(t, func() bool { return a.signalHandoff("d_1") })
	if !<-got {
		t.Fatal("in-process handoff not seen")
	}
	// Across workers: a announces, b's handler goes on. b's subscription
	// may not be up yet: announce until it is seen.
	go func() { got <- b.awaitHandoff(ctx, "d_2", 10*time.Second) }()
	start := time.Now()
	for done := false; !done; {
		a.announceHandoff(ctx, "d_2")
		select {
		case ok := <-got:
			if !ok {
				t.Fatal("handoff over Pub/Sub not seen")
			}
			done = true
		case <-time.After(50 * time.Millisecond):
			if time.Since(start) > 5*time.Second {
				t.Fatal("handoff over Pub/Sub not seen in 5s")
			}
		}
	}
	// Not handed: gives up after its wait; another holder's handoff is not its.
	go func() { got <- a.awaitHandoff(ctx, "d_3", 200*time.Millisecond) }()
	if a.signalHandoff("d_4") {
		t.Fatal("signalled d_4, which nobody waits for")
	}
	if <-got {
		t.Fatal("d_3 went on without a handoff")
	}
	// Capacity.
	for i := range a.opts.InlineSlotWaits {
		go a.awaitHandoff(ctx, fmt.Sprintf("d_cap%d", i), 10*time.Second)
	}
	waitFor(t, func() bool {
		a.slotWaits.mu.Lock()
		defer a.slotWaits.mu.Unlock()
		return len(a.slotWaits.m) == a.opts.InlineSlotWaits
	})
	start = time.Now()
	if a.awaitHandoff(ctx, "d_over", 10*time.Second) || time.Since(start) > time.Second {
		t.Fatal("a waiter beyond InlineSlotWaits did not return at once")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
