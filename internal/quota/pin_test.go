package quota

import (
	"context"
	"testing"
	"time"

	"github.com/distq/distq/internal/redistest"
)

// A slot whose remote job exists is pinned: it outlives any lease (an
// asynq recovery of a crashed worker's task, a Redis outage), keeps
// counting against the limit, and a later acquire or renew does not turn it
// back into a lease.
func TestPinnedSlotOutlivesLease(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	ctx := context.Background()
	l := New(newClient(t, db), Options{})
	uid := newUID()
	if ok, _, err := l.AcquireSlotToken(ctx, uid, "d1", "d1/1", 1, 50*time.Millisecond); err != nil || !ok {
		t.Fatalf("acquire = %v, %v", ok, err)
	}
	if _, _, err := l.PinSlot(ctx, uid, "d1", "d1/1"); err != nil {
		t.Fatal(err)
	}
	// Renew and acquire with short leases must not unpin.
	if held, err := l.RenewSlot(ctx, uid, "d1", time.Millisecond); err != nil || !held {
		t.Fatalf("renew = %v, %v", held, err)
	}
	if ok, _, err := l.AcquireSlotToken(ctx, uid, "d1", "d1/2", 1, time.Millisecond); err != nil || !ok {
		t.Fatalf("re-acquire = %v, %v", ok, err)
	}
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) { // well past every lease given
		if ok, inUse, err := l.AcquireSlot(ctx, uid, "d2", 1, time.Minute); err != nil || ok || inUse != 1 {
			t.Fatalf("another holder got a slot while d1's is pinned: ok=%v inUse=%d err=%v", ok, inUse, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	h, err := l.Holders(ctx, uid)
	if err != nil || len(h) != 1 || !Pinned(h["d1"]) {
		t.Fatalf("holders %v, %v; want d1 pinned", h, err)
	}
	// A pin is taken over the limit and after a lapsed lease.
	if _, _, err := l.PinSlot(ctx, uid, "d3", ""); err != nil {
		t.Fatal(err)
	}
	if h, _ := l.Holders(ctx, uid); len(h) != 2 {
		t.Fatalf("holders %v, want d1 and d3", h)
	}
	// Only a release frees it.
	if _, err := l.ReleaseSlot(ctx, uid, "d1"); err != nil {
		t.Fatal(err)
	}
	if h, _ := l.Holders(ctx, uid); len(h) != 1 {
		t.Fatalf("after release: holders %v, want d3 only", h)
	}
}

// A stale run of a distribution never frees the slot the live run holds:
// release goes by holder token.
func TestStaleRunCannotReleaseLiveSlot(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	ctx := context.Background()
	l := New(newClient(t, db), Options{})
	uid := newUID()
	if ok, _, err := l.AcquireSlotToken(ctx, uid, "d1", "d1/run1", 1, time.Minute); err != nil || !ok {
		t.Fatalf("run 1 acquire = %v, %v", ok, err)
	}
	// asynq recovers the task; run 2 takes the same holder's slot over.
	if ok, _, err := l.AcquireSlotToken(ctx, uid, "d1", "d1/run2", 1, time.Minute); err != nil || !ok {
		t.Fatalf("run 2 acquire = %v, %v", ok, err)
	}
	if _, _, err := l.PinSlot(ctx, uid, "d1", "d1/run2"); err != nil {
		t.Fatal(err)
	}
	// The stale run 1 acquires again: a pinned slot stays with run 2.
	if ok, _, err := l.AcquireSlotToken(ctx, uid, "d1", "d1/run1", 1, time.Minute); err != nil || !ok {
		t.Fatalf("stale re-acquire = %v, %v", ok, err)
	}
	if err := l.AddWaiter(ctx, uid, "w1"); err != nil {
		t.Fatal(err)
	}
	// The stale run 1 gives up and releases: nothing happens.
	next, err := l.ReleaseSlotToken(ctx, uid, "d1", "d1/run1")
	if err != nil || next != "" {
		t.Fatalf("stale release = %q, %v; want nothing freed, no waiter popped", next, err)
	}
	if h, _ := l.Holders(ctx, uid); len(h) != 1 {
		t.Fatalf("the live run's slot was freed by a stale run: holders %v", h)
	}
	if ok, _, _ := l.AcquireSlot(ctx, uid, "d2", 1, time.Minute); ok {
		t.Fatal("d2 got a slot the live run holds")
	}
	// The live run releases: freed, and the waiter is popped.
	next, err = l.ReleaseSlotToken(ctx, uid, "d1", "d1/run2")
	if err != nil || next != "w1" {
		t.Fatalf("live release = %q, %v; want w1", next, err)
	}
	if h, _ := l.Holders(ctx, uid); len(h) != 0 {
		t.Fatalf("holders %v after the live release", h)
	}
}

// A grant is stale once more than its margin passed, or the account was
// paused after it: it must be reserved again before the call goes out.
func TestGrantStaleAfterPauseOrStall(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	ctx := context.Background()
	l := New(newClient(t, db), Options{InitialMargin: 30 * time.Millisecond})
	uid := newUID()
	g, err := l.WaitGrant(ctx, uid, "Create", 2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if g.Margin != 30*time.Millisecond {
		t.Fatalf("margin %v", g.Margin)
	}
	epoch, err := l.Epoch(ctx, uid)
	if err != nil || g.Stale(epoch) {
		t.Fatalf("fresh grant stale (epoch %d vs %d, %v)", epoch, g.Epoch, err)
	}
	if err := l.Pause(ctx, uid, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	_, epoch2, err := l.PinSlot(ctx, uid, "d1", "")
	if err != nil || epoch2 != epoch+1 || !g.Stale(epoch2) {
		t.Fatalf("after a pause: epoch %d (was %d), stale %v, err %v", epoch2, epoch, g.Stale(epoch2), err)
	}
	g2, err := l.WaitGrant(ctx, uid, "Create", 2, 5*time.Second)
	if err != nil || g2.Epoch != epoch2 {
		t.Fatalf("grant after pause: %+v, %v", g2, err)
	}
	for !g2.Stale(epoch2) { // a stall past the margin
		time.Sleep(5 * time.Millisecond)
	}
	if time.Since(g2.Local) <= g2.Margin {
		t.Fatalf("stale before its margin passed")
	}
}

// A grant given back unused costs no capacity, and the grants that were
// used still bound the next one.
func TestCancelGrant(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	ctx := context.Background()
	l := New(newClient(t, db), Options{InitialMargin: 10 * time.Millisecond})
	uid := newUID()
	g1, err := l.WaitGrant(ctx, uid, "Create", 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// The next grant is a second away.
	if r, err := l.Reserve(ctx, uid, "Create", 1, 0); err != nil || r.OK {
		t.Fatalf("second grant at once: %+v, %v", r, err)
	}
	if err := l.CancelGrant(ctx, uid, "Create", g1); err != nil {
		t.Fatal(err)
	}
	r, err := l.Reserve(ctx, uid, "Create", 1, 0)
	if err != nil || !r.OK || r.At.Before(g1.At) {
		t.Fatalf("after giving g1 back: %+v, %v; want an immediate grant, not before g1", r, err)
	}
	// That one was used: the next waits a second again.
	if r2, err := l.Reserve(ctx, uid, "Create", 1, 0); err != nil || r2.OK || r2.Wait < 900*time.Millisecond {
		t.Fatalf("grant after a used one: %+v, %v", r2, err)
	}
}
