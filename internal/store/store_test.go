package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/redistest"
)

func newRecord(team, pk string, now time.Time) *Record {
	return &Record{
		Distribution: distribution.Distribution{
			ID: distribution.NewID(now), Team: team, Account: "a", ProductKey: pk,
			SourceInstanceID: "iotx-src", TargetInstanceID: "iotx-dst", State: distribution.StateQueued,
			CreatedAt: now, UpdatedAt: now,
		},
		UID: "1", Queue: "single",
	}
}

// Paging while records are inserted neither skips nor repeats any record
// that existed when paging began.
func TestListPagingUnderConcurrentInserts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := NewRedis(redistest.New(t).Client, time.Hour)
	var before []string
	for i := range 50 {
		r := newRecord("t", fmt.Sprintf("pk%03d", i), time.Now())
		if _, err := s.Insert(ctx, nil, []*Record{r}); err != nil {
			t.Fatal(err)
		}
		before = append(before, r.ID)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			s.Insert(ctx, nil, []*Record{newRecord("t", fmt.Sprintf("new%04d", i), time.Now())})
		}
	}()
	seen := map[string]int{}
	cursor := ""
	for {
		recs, next, err := s.List(ctx, distribution.Filter{Team: "t", After: cursor, Limit: 7})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			seen[r.ID]++
		}
		if next == "" || len(seen) > 2000 {
			break
		}
		cursor = next
	}
	close(stop)
	wg.Wait()
	for id, n := range seen {
		if n > 1 {
			t.Fatalf("%s listed %d times", id, n)
		}
	}
	for _, id := range before {
		if seen[id] != 1 {
			t.Fatalf("%s skipped", id)
		}
	}
}

func TestUpdateKeepsIndexesAndCounts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := NewRedis(redistest.New(t).Client, time.Hour)
	b := &distribution.Batch{ID: distribution.NewBatchID(time.Now()), Team: "t", Account: "a", CreatedAt: time.Now()}
	r1, r2 := newRecord("t", "p1", time.Now()), newRecord("t", "p2", time.Now())
	r1.BatchID, r2.BatchID = b.ID, b.ID
	dup := newRecord("t", "p1", time.Now())
	claims, err := s.Insert(ctx, b, []*Record{r1, r2, dup})
	if err != nil {
		t.Fatal(err)
	}
	if claims[2].Record != nil || claims[2].Existing != r1.ID {
		t.Fatalf("duplicate claim %+v, want refused naming %s", claims[2], r1.ID)
	}
	// Concurrent updates of one record: every change lands once.
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Update(ctx, r1.ID, func(r *Record) error { r.Attempts++; return nil }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if _, err := s.Update(ctx, r2.ID, func(r *Record) error { r.State = distribution.StateSucceeded; return nil }); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, r1.ID)
	if err != nil || got.Attempts != 10 {
		t.Fatalf("attempts %d (%v), want 10", got.Attempts, err)
	}
	bs, err := s.GetBatch(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if bs.Counts[distribution.StateQueued] != 1 || bs.Counts[distribution.StateSucceeded] != 1 {
		t.Fatalf("counts %v, want 1 queued, 1 succeeded", bs.Counts)
	}
	succeeded, _, err := s.List(ctx, distribution.Filter{Team: "t", State: distribution.StateSucceeded})
	if err != nil || len(succeeded) != 1 || succeeded[0].ID != r2.ID {
		t.Fatalf("succeeded listing %v (%v), want %s", succeeded, err, r2.ID)
	}
	// The finished one freed its active key and left the open set.
	if owner, _ := s.ActiveOwner(ctx, "1", "p2", "iotx-dst"); owner != "" {
		t.Fatalf("active key of a finished record still owned by %s", owner)
	}
	open, _ := s.Open(ctx, time.Now().Add(time.Minute), 10)
	if len(open) != 1 || open[0] != r1.ID {
		t.Fatalf("open %v, want only %s", open, r1.ID)
	}
	// Undo of an insert leaves nothing.
	if err := s.Delete(ctx, []*Record{r1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, r1.ID); err != ErrNotFound {
		t.Fatalf("after delete: %v, want ErrNotFound", err)
	}
	if owner, _ := s.ActiveOwner(ctx, "1", "p1", "iotx-dst"); owner != "" {
		t.Fatalf("active key survived delete: %s", owner)
	}
}
