package quota

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/distq/distq/internal/redistest"
)

// TestSlotsConcurrent has 24 goroutines over 3 clients take, hold and
// release slots of one account; at no time do more than limit hold one.
func TestSlotsConcurrent(t *testing.T) {
	t.Parallel()
	const limit = 4
	db := redistest.New(t)
	ctx := context.Background()
	uid := newUID()
	var (
		holding, most, taken atomic.Int64
		wg                   sync.WaitGroup
	)
	for p := range 3 {
		l := New(newClient(t, db), Options{})
		for g := range 8 {
			wg.Go(func() {
				for i := range 25 {
					holder := fmt.Sprintf("d-%d-%d-%d", p, g, i)
					ok, inUse, err := l.AcquireSlot(ctx, uid, holder, limit, time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					if inUse > limit {
						t.Errorf("in use %d > limit %d", inUse, limit)
					}
					if !ok {
						continue
					}
					taken.Add(1)
					n := holding.Add(1)
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					if held, err := l.RenewSlot(ctx, uid, holder, time.Minute); err != nil || !held {
						t.Errorf("RenewSlot of a held slot = %v, %v", held, err)
					}
					holding.Add(-1)
					if _, err := l.ReleaseSlot(ctx, uid, holder); err != nil {
						t.Error(err)
					}
				}
			})
		}
	}
	wg.Wait()
	if most.Load() > limit {
		t.Errorf("%d holders at once, limit %d", most.Load(), limit)
	}
	if taken.Load() == 0 {
		t.Error("no acquire succeeded")
	}
	t.Logf("%d slots taken, at most %d at once", taken.Load(), most.Load())
	holders, err := New(db.Client, Options{}).Holders(ctx, uid)
	if err != nil || len(holders) != 0 {
		t.Errorf("Holders after every release = %v, %v; want none", holders, err)
	}
}

func TestSlots(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	ctx := context.Background()
	l := New(db.Client, Options{})

	t.Run("re-acquire is idempotent and renews", func(t *testing.T) {
		uid := newUID()
		for range 3 {
			ok, inUse, err := l.AcquireSlot(ctx, uid, "d1", 1, time.Second)
			if err != nil || !ok || inUse != 1 {
				t.Fatalf("AcquireSlot = %v, %d, %v; want true, 1", ok, inUse, err)
			}
		}
		first, _ := l.Holders(ctx, uid)
		if _, _, err := l.AcquireSlot(ctx, uid, "d1", 1, time.Hour); err != nil {
			t.Fatal(err)
		}
		renewed, err := l.Holders(ctx, uid)
		if err != nil || len(renewed) != 1 || !renewed["d1"].After(first["d1"].Add(50*time.Minute)) {
			t.Errorf("Holders after renewal = %v, %v; want d1 leased for about 1h (was %v)", renewed, err, first)
		}
		if ok, inUse, err := l.AcquireSlot(ctx, uid, "d2", 1, time.Second); err != nil || ok || inUse != 1 {
			t.Errorf("AcquireSlot over the limit = %v, %d, %v; want false, 1", ok, inUse, err)
		}
	})

	t.Run("an expired lease frees its slot", func(t *testing.T) {
		uid := newUID()
		if ok, _, err := l.AcquireSlot(ctx, uid, "d1", 1, 150*time.Millisecond); err != nil || !ok {
			t.Fatalf("AcquireSlot = %v, %v", ok, err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			ok, _, err := l.AcquireSlot(ctx, uid, "d2", 1, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the slot of an expired lease was never freed")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if held, err := l.RenewSlot(ctx, uid, "d1", time.Minute); err != nil || held {
			t.Errorf("RenewSlot of a lost lease = %v, %v; want false", held, err)
		}
		if held, err := l.RenewSlot(ctx, uid, "d2", time.Minute); err != nil || !held {
			t.Errorf("RenewSlot of a held lease = %v, %v; want true", held, err)
		}
		holders, err := l.Holders(ctx, uid)
		if diff := cmp.Diff([]string{"d2"}, sortedKeys(holders)); err != nil || diff != "" {
			t.Errorf("Holders (-want +got):\n%s %v", diff, err)
		}
	})

	t.Run("release pops the oldest waiter", func(t *testing.T) {
		uid := newUID()
		for _, id := range []string{"w1", "w2", "w3", "w1", "w4"} {
			if err := l.AddWaiter(ctx, uid, id); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := l.Waiters(ctx, uid); err != nil || n != 4 {
			t.Fatalf("Waiters = %d, %v; want 4", n, err)
		}
		if ok, _, err := l.AcquireSlot(ctx, uid, "w4", 2, time.Minute); err != nil || !ok {
			t.Fatalf("AcquireSlot by a waiter = %v, %v", ok, err)
		}
		if err := l.RemoveWaiter(ctx, uid, "w2"); err != nil {
			t.Fatal(err)
		}
		var got []string
		for range 3 {
			next, err := l.ReleaseSlot(ctx, uid, "w4")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, next)
		}
		// w4 stopped waiting when it got a slot; w2 was removed.
		if diff := cmp.Diff([]string{"w1", "w3", ""}, got); diff != "" {
			t.Errorf("popped waiters (-want +got):\n%s", diff)
		}
		if n, err := l.Waiters(ctx, uid); err != nil || n != 0 {
			t.Errorf("Waiters = %d, %v; want 0", n, err)
		}
	})

	t.Run("external jobs reduce capacity", func(t *testing.T) {
		uid := newUID()
		if err := l.SetExternal(ctx, uid, 8); err != nil {
			t.Fatal(err)
		}
		if n, err := l.External(ctx, uid); err != nil || n != 8 {
			t.Fatalf("External = %d, %v; want 8", n, err)
		}
		type result struct {
			OK    bool
			InUse int
		}
		var got []result
		for _, h := range []string{"d1", "d2", "d3"} {
			ok, inUse, err := l.AcquireSlot(ctx, uid, h, 10, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, result{ok, inUse})
		}
		if diff := cmp.Diff([]result{{true, 9}, {true, 10}, {false, 10}}, got); diff != "" {
			t.Errorf("acquires with 8 external jobs (-want +got):\n%s", diff)
		}
		if err := l.SetExternal(ctx, uid, 0); err != nil {
			t.Fatal(err)
		}
		if n, err := l.External(ctx, uid); err != nil || n != 0 {
			t.Errorf("External after clearing = %d, %v; want 0", n, err)
		}
		if ok, inUse, err := l.AcquireSlot(ctx, uid, "d3", 10, time.Minute); err != nil || !ok || inUse != 3 {
			t.Errorf("AcquireSlot after clearing = %v, %d, %v; want true, 3", ok, inUse, err)
		}
	})

	t.Run("keys expire when idle", func(t *testing.T) {
		uid := newUID()
		if _, _, err := l.AcquireSlot(ctx, uid, "d1", 1, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := l.AddWaiter(ctx, uid, "w1"); err != nil {
			t.Fatal(err)
		}
		if err := l.SetExternal(ctx, uid, 1); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{key(uid, kindSlots), key(uid, kindWaiters), key(uid, kindExternal)} {
			if ttl, err := db.Client.PTTL(ctx, k).Result(); err != nil || ttl <= 0 {
				t.Errorf("PTTL %s = %v, %v; want an expiry", k, ttl, err)
			}
		}
	})
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
