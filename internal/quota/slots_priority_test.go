package quota

import (
	"context"
	"testing"

	"github.com/distq/distq/internal/redistest"
)

func TestPriorityWaitersFirst(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	l := New(db.Client, Options{})
	ctx := context.Background()
	const uid = "42"
	for _, w := range []struct {
		id       string
		priority bool
	}{{"b1", false}, {"b2", false}, {"s1", true}, {"b3", false}, {"s2", true}} {
		var err error
		if w.priority {
			err = l.AddPriorityWaiter(ctx, uid, w.id)
		} else {
			err = l.AddWaiter(ctx, uid, w.id)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for range 5 {
		next, err := l.ReleaseSlot(ctx, uid, "nobody")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, next)
	}
	want := []string{"s1", "s2", "b1", "b2", "b3"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("waiters served %v, want %v", got, want)
		}
	}
}
