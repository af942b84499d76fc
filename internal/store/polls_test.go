package store

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/distq/distq/internal/redistest"
)

// The poll schedule: a poll is claimed once when due (never by two
// claimers at once), leased until the lease ends, then due again unless
// rescheduled or removed; a schedule never postpones a scheduled poll;
// a reschedule never resurrects a removed one.
func TestPollSchedule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := NewRedis(redistest.New(t).Client, time.Hour)
	t0 := time.UnixMilli(1_800_000_000_000)
	for i, id := range []string{"poll:a", "poll:b", "poll:c"} {
		if _, err := s.SchedulePoll(ctx, id, t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if added, err := s.SchedulePoll(ctx, "poll:a", t0.Add(time.Hour)); err != nil || added {
		t.Fatalf("scheduling poll:a again: added %v, %v; want not added", added, err)
	}
	ids, next, err := s.ClaimPolls(ctx, t0.Add(1500*time.Millisecond), time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []string{"poll:a", "poll:b"}) || !next.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("claimed %v next %v, want [poll:a poll:b] next t0+2s", ids, next.Sub(t0))
	}
	// Claimed polls are leased: not due again before the lease ends.
	ids, _, err = s.ClaimPolls(ctx, t0.Add(30*time.Second), time.Minute, 10)
	if err != nil || !slices.Equal(ids, []string{"poll:c"}) {
		t.Fatalf("claimed %v, %v at t0+30s; want [poll:c]", ids, err)
	}
	// poll:a ends, poll:b is rescheduled; a removed poll stays removed.
	if err := s.UnschedulePoll(ctx, "poll:a"); err != nil {
		t.Fatal(err)
	}
	if err := s.ReschedulePoll(ctx, "poll:a", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.ReschedulePoll(ctx, "poll:b", t0.Add(40*time.Second)); err != nil {
		t.Fatal(err)
	}
	ids, next, err = s.ClaimPolls(ctx, t0.Add(45*time.Second), time.Minute, 10)
	if err != nil || !slices.Equal(ids, []string{"poll:b"}) {
		t.Fatalf("claimed %v, %v at t0+45s; want [poll:b]", ids, err)
	}
	// poll:c's lease (claimed at t0+30s) ends at t0+90s: due again then.
	if !next.Equal(t0.Add(90 * time.Second)) {
		t.Fatalf("next %v, want poll:c's lease end t0+90s", next.Sub(t0))
	}
	n, first, err := s.PollSchedule(ctx)
	if err != nil || n != 2 || !first.Equal(t0.Add(90*time.Second)) {
		t.Fatalf("schedule: %d polls, first %v, %v; want 2, t0+90s", n, first.Sub(t0), err)
	}
	if err := s.UnschedulePoll(ctx, "poll:b"); err != nil {
		t.Fatal(err)
	}
	if err := s.UnschedulePoll(ctx, "poll:c"); err != nil {
		t.Fatal(err)
	}
	ids, next, err = s.ClaimPolls(ctx, t0.Add(time.Hour), time.Minute, 10)
	if err != nil || len(ids) != 0 || !next.IsZero() {
		t.Fatalf("empty schedule: claimed %v next %v, %v", ids, next, err)
	}
}

// Many claimers at once: every due poll is claimed exactly once, and the
// limit holds per claim.
func TestPollClaimsDoNotOverlap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := NewRedis(redistest.New(t).Client, time.Hour)
	now := time.Now()
	const n = 200
	for i := range n {
		if _, err := s.SchedulePoll(ctx, "poll:"+string(rune('A'+i%26))+string(rune('a'+i/26)), now.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				ids, _, err := s.ClaimPolls(ctx, now, time.Minute, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ids) > 7 {
					t.Errorf("claimed %d, limit 7", len(ids))
				}
				if len(ids) == 0 {
					return
				}
				mu.Lock()
				for _, id := range ids {
					seen[id]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("%d polls claimed, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("%s claimed %d times", id, c)
		}
	}
}

// AdvancePolls only brings polls forward, and only those still scheduled;
// PollsDueAfter lists those due after a time.
func TestAdvancePolls(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := NewRedis(redistest.New(t).Client, time.Hour)
	t0 := time.UnixMilli(1_800_000_000_000)
	for i, id := range []string{"poll:a", "poll:b", "poll:c"} {
		if _, err := s.SchedulePoll(ctx, id, t0.Add(time.Duration(10*(i+1))*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := s.PollsDueAfter(ctx, t0.Add(10*time.Second), 10)
	if err != nil || !slices.Equal(ids, []string{"poll:b", "poll:c"}) {
		t.Fatalf("due after t0+10s: %v, %v; want [poll:b poll:c]", ids, err)
	}
	err = s.AdvancePolls(ctx, map[string]time.Time{
		"poll:b": t0.Add(5 * time.Second),  // sooner: moves
		"poll:c": t0.Add(45 * time.Second), // later: stays at 30s
		"poll:x": t0,                       // not scheduled: not added
	})
	if err != nil {
		t.Fatal(err)
	}
	ids, next, err := s.ClaimPolls(ctx, t0.Add(6*time.Second), time.Minute, 10)
	if err != nil || !slices.Equal(ids, []string{"poll:b"}) || !next.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("claimed %v next %v, %v; want [poll:b], t0+10s", ids, next.Sub(t0), err)
	}
	ids, _, err = s.ClaimPolls(ctx, t0.Add(31*time.Second), time.Minute, 10)
	if err != nil || !slices.Equal(ids, []string{"poll:a", "poll:c"}) {
		t.Fatalf("claimed %v, %v at t0+31s; want [poll:a poll:c]", ids, err)
	}
}

// When a Query last found a job running is kept with its poll, for the
// worker that sees the end (the polls of one job move between workers);
// a claim of fewer polls than are due answers the first left as next.
func TestPollRanAtAndPartialClaim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := NewRedis(redistest.New(t).Client, time.Hour)
	t0 := time.UnixMilli(1_800_000_000_000)
	if _, ok, err := s.PollRanAt(ctx, "poll:a"); err != nil || ok {
		t.Fatalf("PollRanAt of a poll never run: ok %v, %v; want not known", ok, err)
	}
	for i, id := range []string{"poll:a", "poll:b", "poll:c"} {
		if _, err := s.SchedulePoll(ctx, id, t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	ids, next, err := s.ClaimPolls(ctx, t0.Add(5*time.Second), time.Minute, 1)
	if err != nil || !slices.Equal(ids, []string{"poll:a"}) || !next.Equal(t0.Add(time.Second)) {
		t.Fatalf("claimed %v next %v (%v), want [poll:a] next t0+1s (poll:b, due, left for the next claim)", ids, next.Sub(t0), err)
	}
	ran := t0.Add(5200 * time.Millisecond)
	if err := s.RescheduleRunningPoll(ctx, "poll:a", t0.Add(6*time.Second), ran); err != nil {
		t.Fatal(err)
	}
	at, ok, err := s.PollRanAt(ctx, "poll:a")
	if err != nil || !ok || !at.Equal(ran) {
		t.Fatalf("PollRanAt = %v %v %v, want %v", at, ok, err, ran)
	}
	ids, _, err = s.ClaimPolls(ctx, t0.Add(6*time.Second), time.Minute, 10)
	if err != nil || !slices.Equal(ids, []string{"poll:b", "poll:c", "poll:a"}) {
		t.Fatalf("claimed %v, %v at t0+6s; want [poll:b poll:c poll:a]", ids, err)
	}
}
