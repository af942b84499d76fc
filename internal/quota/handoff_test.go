package quota

import (
	"context"
	"testing"
	"time"

	"github.com/distq/distq/internal/redistest"
)

// A finished job's slot goes to the next waiter in the release itself,
// single submissions first (Q7): a task that did not wait cannot take it
// between the release and the waiter's acquire, and the waiter's acquire
// finds it held. Without room (jobs made outside distq), nothing is handed.
func TestHandSlotGivesTheFreedSlotToTheNextWaiter(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	l := New(db.Client, Options{})
	ctx := context.Background()
	const uid, limit, lease = "43", 2, time.Minute
	for _, h := range []string{"a", "b"} {
		if ok, _, err := l.AcquireSlot(ctx, uid, h, limit, lease); err != nil || !ok {
			t.Fatalf("acquire %s: %v %v", h, ok, err)
		}
	}
	if err := l.AddWaiter(ctx, uid, "batch1"); err != nil {
		t.Fatal(err)
	}
	if err := l.AddPriorityWaiter(ctx, uid, "single1"); err != nil {
		t.Fatal(err)
	}
	next, handed, err := l.HandSlot(ctx, uid, "a", "", limit, lease)
	if err != nil || next != "single1" || !handed {
		t.Fatalf("hand a's slot: next %q handed %v err %v, want single1 handed", next, handed, err)
	}
	if ok, _, err := l.AcquireSlot(ctx, uid, "latecomer", limit, lease); err != nil || ok {
		t.Fatalf("a task that did not wait took the handed slot: %v %v", ok, err)
	}
	if ok, inUse, err := l.AcquireSlotToken(ctx, uid, "single1", "single1/run", limit, lease); err != nil || !ok || inUse != limit {
		t.Fatalf("the waiter's acquire: ok %v in use %d err %v, want its handed slot", ok, inUse, err)
	}
	// A stale run of b cannot hand b's slot away.
	if _, _, err := l.PinSlot(ctx, uid, "b", "b/live"); err != nil {
		t.Fatal(err)
	}
	if next, handed, err := l.HandSlot(ctx, uid, "b", "b/stale", limit, lease); err != nil || next != "" || handed {
		t.Fatalf("stale run's hand-off: %q %v %v, want nothing", next, handed, err)
	}
	// Jobs made outside distq fill the account: b's slot frees, but the
	// waiter is popped without a slot (it will look again).
	if err := l.SetExternal(ctx, uid, 1); err != nil {
		t.Fatal(err)
	}
	next, handed, err = l.HandSlot(ctx, uid, "b", "b/live", limit, lease)
	if err != nil || next != "batch1" || handed {
		t.Fatalf("hand b's slot with the account full: %q %v %v, want batch1 popped, not handed", next, handed, err)
	}
	h, err := l.Holders(ctx, uid)
	if err != nil || len(h) != 1 {
		t.Fatalf("holders %v (%v), want single1 alone", h, err)
	}
	if _, ok := h["single1"]; !ok {
		t.Fatalf("holders %v, want single1", h)
	}
	if _, _, err := l.HandSlot(ctx, uid, "x", "", 0, lease); err == nil {
		t.Fatal("HandSlot without a limit accepted")
	}
}
