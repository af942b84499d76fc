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

// When an account's first job duration becomes known, the polls of its
// running jobs, scheduled on the geometric schedule of an unknown duration,
// are brought forward to just after the expected end; never pushed back,
// and another account's polls are left alone.
func TestReaimPollsBringsPollsForward(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := store.NewRedis(redistest.New(t).Client, time.Hour)
	w := NewWorker(st, nil, nil, nil, nil, nil, slog.New(slog.DiscardHandler), Options{})
	now := time.Now().UTC().Truncate(time.Millisecond)
	w.now = func() time.Time { return now }
	a := &Account{Account: config.Account{Name: "a", UID: "1"}}
	running := func(uid, pk string, submitted time.Time, pollAt time.Time) string {
		return pollTaskID(insertRunning(t, st, uid, pk, submitted, pollAt).ID)
	}
	// 40 s into 60 s jobs, next polled at 50 s (an eighth of the age later).
	late := running("1", "pk1", now.Add(-40*time.Second), now.Add(10*time.Second))
	// Already due sooner than the new aim: stays.
	soon := running("1", "pk2", now.Add(-40*time.Second), now.Add(2*time.Second))
	// Another account's: stays.
	other := running("2", "pk3", now.Add(-40*time.Second), now.Add(10*time.Second))

	w.reaimPolls(ctx, a, 45*time.Second) // expected end at 45 s: probe at 44.5 s
	scores := map[string]time.Duration{}
	for _, id := range []string{late, soon, other} {
		v, err := st.Client().ZScore(ctx, "distq:polls", id).Result()
		if err != nil {
			t.Fatal(err)
		}
		scores[id] = time.UnixMilli(int64(v)).Sub(now)
	}
	if d := scores[late]; d < 4400*time.Millisecond || d > 4600*time.Millisecond {
		t.Errorf("re-aimed poll due in %v, want 4.5s (the probe before the expected end)", d)
	}
	if d := scores[soon]; d != 2*time.Second {
		t.Errorf("a sooner poll moved to %v, want it left at 2s", d)
	}
	if d := scores[other]; d != 10*time.Second {
		t.Errorf("another account's poll moved to %v, want it left at 10s", d)
	}
}
