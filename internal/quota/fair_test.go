package quota

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/distq/distq/internal/redistest"
)

func fairItems(team string, n int, start time.Time) []FairItem {
	out := make([]FairItem, n)
	for i := range out {
		out[i] = FairItem{Team: team, Order: start, ID: fmt.Sprintf("%s-%04d", team, i)}
	}
	return out
}

// drain admits one item at a time (K = 1), as if each admitted item's
// Create went out at once, and returns the teams in admission order.
func drain(t *testing.T, l *Limiter, uid string, n int, weights map[string]int, paused []string) []string {
	t.Helper()
	ctx := context.Background()
	var order []string
	for range n {
		got, err := l.FairAdmit(ctx, uid, 1, time.Minute, weights, paused)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		if len(got) != 1 {
			t.Fatalf("K=1 admitted %d", len(got))
		}
		order = append(order, got[0].Team)
		if was, err := l.FairDone(ctx, uid, got[0]); err != nil || !was {
			t.Fatalf("done %v: %v %v", got[0], was, err)
		}
	}
	return order
}

func count(order []string, team string) int {
	n := 0
	for _, t := range order {
		if t == team {
			n++
		}
	}
	return n
}

// Team A queues 300 items, then team B 30: from B's arrival on, the
// admissions alternate (weights 1:1) or go 3:1 (weights 3:1), and within a
// team items go in their order. A team alone takes everything.
func TestFairAdmitSharesByWeight(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		weights map[string]int
		wantA   int // A's admissions among the first 40 after B arrives
	}{
		{"equal", nil, 20},
		{"3:1", map[string]int{"A": 3, "B": 1}, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := redistest.New(t)
			l := New(db.Client, Options{})
			ctx := context.Background()
			uid := "fair-" + tc.name
			t0 := time.Now()
			for _, it := range fairItems("A", 300, t0) {
				if _, err := l.FairEnqueue(ctx, uid, it, time.Minute); err != nil {
					t.Fatal(err)
				}
			}
			// A alone: it is admitted without limit.
			if got := drain(t, l, uid, 50, tc.weights, nil); count(got, "A") != 50 {
				t.Fatalf("A alone: %v", got)
			}
			for _, it := range fairItems("B", 30, t0.Add(time.Second)) {
				if _, err := l.FairEnqueue(ctx, uid, it, time.Minute); err != nil {
					t.Fatal(err)
				}
			}
			got := drain(t, l, uid, 40, tc.weights, nil)
			if a := count(got, "A"); a != tc.wantA {
				t.Fatalf("A got %d of 40 admissions after B arrived, want %d: %v", a, tc.wantA, got)
			}
			if got[0] != "B" && got[1] != "B" {
				t.Fatalf("newcomer B not admitted within the first two: %v", got)
			}
		})
	}
}

func TestFairAdmitKeepsOrderWithinATeamAndSkipsPaused(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	l := New(db.Client, Options{})
	ctx := context.Background()
	const uid = "fair-order"
	t0 := time.Now()
	items := fairItems("A", 5, t0)
	// Queued out of order, and twice: the order field decides, and a
	// second enqueue keeps the place.
	for _, i := range []int{3, 1, 4, 0, 2, 1} {
		if _, err := l.FairEnqueue(ctx, uid, items[i], time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.FairEnqueue(ctx, uid, FairItem{Team: "B", Order: t0, ID: "B-0"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	// B paused: only A is admitted, in order.
	got, err := l.FairAdmit(ctx, uid, 3, time.Minute, nil, []string{"B"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, it := range got {
		ids = append(ids, it.ID)
	}
	if fmt.Sprint(ids) != "[A-0000 A-0001 A-0002]" {
		t.Fatalf("admitted %v, want A's first three in order", ids)
	}
	// Re-enqueueing an admitted item extends its admission, not queues it.
	if adm, err := l.FairEnqueue(ctx, uid, got[0], time.Minute); err != nil || !adm {
		t.Fatalf("enqueue of an admitted item: %v %v", adm, err)
	}
	st, err := l.FairState(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}
	if st["A"].Queued != 2 || st["A"].Admitted != 3 || st["B"].Queued != 1 {
		t.Fatalf("state %+v", st)
	}
	// A paused admitted item goes back in its place.
	if was, err := l.FairReturn(ctx, uid, got[0]); err != nil || !was {
		t.Fatalf("return: %v %v", was, err)
	}
	got, err = l.FairAdmit(ctx, uid, 3, time.Minute, nil, []string{"A"})
	if err != nil || len(got) != 1 || got[0].ID != "B-0" {
		t.Fatalf("with A paused: %v %v, want B-0", got, err)
	}
}

// An admission that is never used lapses, and its item is admitted again
// in its place: a crash between admission and Create loses nothing.
func TestFairAdmissionLapsesBackToTheQueue(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	l := New(db.Client, Options{})
	ctx := context.Background()
	const uid = "fair-lapse"
	for _, it := range fairItems("A", 3, time.Now()) {
		if _, err := l.FairEnqueue(ctx, uid, it, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	got, err := l.FairAdmit(ctx, uid, 1, 50*time.Millisecond, nil, nil)
	if err != nil || len(got) != 1 || got[0].ID != "A-0000" {
		t.Fatalf("first: %v %v", got, err)
	}
	if got, _ := l.FairAdmit(ctx, uid, 1, time.Minute, nil, nil); len(got) != 0 {
		t.Fatalf("K=1 full, admitted %v", got)
	}
	time.Sleep(80 * time.Millisecond)
	got, err = l.FairAdmit(ctx, uid, 1, time.Minute, nil, nil)
	if err != nil || len(got) != 1 || got[0].ID != "A-0000" {
		t.Fatalf("after the lapse: %v %v, want A-0000 again", got, err)
	}
	// Done items leave the queue for good, queued or admitted.
	if _, err := l.FairDone(ctx, uid, got[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := l.FairDone(ctx, uid, FairItem{Team: "A", Order: got[0].Order, ID: "A-0002"}); err != nil {
		t.Fatal(err)
	}
	got, err = l.FairAdmit(ctx, uid, 5, time.Minute, nil, nil)
	if err != nil || len(got) != 1 || got[0].ID != "A-0001" {
		t.Fatalf("rest: %v %v, want A-0001 only", got, err)
	}
}
