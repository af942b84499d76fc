package quota

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// The dev stack (make run) runs on miniredis, which answers sorted-set
// scores like "9e+15" where Redis answers "9000000000000000", and whose
// Lua cannot read those with tonumber. Every script that reads a score
// must work there too: a pinned slot (score 9e15) beside a new lease, and
// stride passes of 10^6, broke acquires and admissions in make run.
func TestScriptsReadMiniredisScores(t *testing.T) {
	t.Parallel()
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	l := New(rdb, Options{})
	ctx := context.Background()
	const uid = "1234567890123456"
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, _, err := l.AcquireSlotToken(ctx, uid, "A", "A/1", 10, time.Minute)
	must("acquire A", err)
	_, _, err = l.PinSlot(ctx, uid, "A", "A/1")
	must("pin A", err)
	ok, _, err := l.AcquireSlotToken(ctx, uid, "B", "B/1", 10, time.Minute)
	must("acquire B beside a pin", err)
	if !ok {
		t.Fatal("B got no slot")
	}
	_, err = l.RenewSlot(ctx, uid, "B", time.Minute)
	must("renew B", err)
	_, err = l.RenewSlot(ctx, uid, "A", time.Minute)
	must("renew pinned A", err)
	must("waiter", l.AddWaiter(ctx, uid, "W1"))
	must("waiter", l.AddWaiter(ctx, uid, "W2"))
	must("priority waiter", l.AddPriorityWaiter(ctx, uid, "P1"))
	next, _, err := l.HandSlot(ctx, uid, "A", "A/1", 10, time.Minute)
	must("hand A's slot", err)
	if next != "P1" {
		t.Fatalf("handed to %q, want P1", next)
	}
	now := time.Now()
	for _, it := range []FairItem{{"x", now, "x1"}, {"x", now, "x2"}, {"y", now, "y1"}, {"y", now, "y2"}} {
		_, err := l.FairEnqueue(ctx, uid, it, time.Minute)
		must("fair enqueue", err)
	}
	var got []string
	for range 4 {
		items, err := l.FairAdmit(ctx, uid, 1, time.Minute, map[string]int{"x": 1, "y": 1}, nil)
		must("fair admit", err)
		for _, it := range items {
			got = append(got, it.ID)
			_, err := l.FairDone(ctx, uid, it)
			must("fair done", err)
		}
	}
	if len(got) != 4 || got[0][0] == got[1][0] {
		t.Fatalf("admitted %v, want 4 alternating between the teams", got)
	}
}

// The Create path's scripts (reserve with the send allowance, move) run on
// miniredis too: the dev stack sends its Creates through them.
func TestGrantScriptsOnMiniredis(t *testing.T) {
	t.Parallel()
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	l := New(rdb, Options{InitialMargin: 10 * time.Millisecond})
	ctx := context.Background()
	const uid = "1234567890123456"
	g1, err := l.ReserveGrant(ctx, uid, "Create", 2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	g2, err := l.ReserveGrant(ctx, uid, "Create", 2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := g2.Sleep(ctx, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	m2, ok, err := l.MoveGrant(ctx, uid, "Create", 2, g2)
	if err != nil || !ok || !m2.At.After(g2.At) {
		t.Fatalf("move on miniredis: %+v, %v, %v", m2, ok, err)
	}
	g3, err := l.ReserveGrant(ctx, uid, "Create", 2, 5*time.Second)
	if err != nil || g3.At.Sub(g1.At) != time.Second+10*time.Millisecond {
		t.Fatalf("third grant %v after the first, %v; want 1.01s", g3.At.Sub(g1.At), err)
	}
}
