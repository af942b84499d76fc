package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/internal/distribution"
	"github.com/distq/distq/internal/redistest"
)

// txHook calls onTx once, before the first MULTI of the client is sent.
type txHook struct {
	armed atomic.Bool
	onTx  func()
}

func (h *txHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *txHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}
func (h *txHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() == "multi" && h.armed.CompareAndSwap(true, false) {
			h.onTx()
		}
		return next(ctx, cmds)
	}
}

func batchRecords(team, batchID string, n int) []*Record {
	recs := make([]*Record, n)
	for i := range recs {
		recs[i] = newRecord(team, fmt.Sprintf("pk%05d", i), time.Now())
		recs[i].BatchID = batchID
	}
	return recs
}

func pttls(t *testing.T, rdb *redis.Client, recs []*Record) []time.Duration {
	t.Helper()
	out := make([]time.Duration, len(recs))
	for i, r := range recs {
		d, err := rdb.PTTL(context.Background(), keyActive(r.UID, r.ProductKey, r.TargetInstanceID)).Result()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = d
	}
	return out
}

func countRecords(t *testing.T, rdb *redis.Client, recs []*Record) int64 {
	t.Helper()
	keys := make([]string, len(recs))
	for i, r := range recs {
		keys[i] = keyRecord(r.ID)
	}
	n, err := rdb.Exists(context.Background(), keys...).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A Redis that stalls between the claims and the records' transaction
// leaves no permanent claim: the claims carry a short TTL until the
// records are written, and the undo, which the caller's deadline does not
// cancel, removes them once Redis answers again. Later submissions of the
// same products succeed.
func TestInsertStalledRedisLeavesNoPermanentClaim(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	proxy := redistest.NewProxy(t, db.Addr)
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr(), DB: db.Number, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	hook := &txHook{onTx: proxy.Stall}
	rdb.AddHook(hook)
	s := NewRedis(rdb, time.Hour)
	now := time.Now()
	b := &distribution.Batch{ID: distribution.NewBatchID(now), Team: "t", Account: "a", CreatedAt: now}
	recs := batchRecords("t", b.ID, 200)

	hook.armed.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() { _, err := s.Insert(ctx, b, recs); errc <- err }()
	<-ctx.Done()
	// Redis is still stalled for this client: what is left must not be
	// permanent.
	for i, d := range pttls(t, db.Client, recs) {
		if d == -1 {
			t.Fatalf("claim %d has no TTL after a stalled insert: it would block the product forever", i)
		}
		if d > DefaultClaimTTL {
			t.Fatalf("claim %d TTL %v, want at most %v", i, d, DefaultClaimTTL)
		}
	}
	if n := countRecords(t, db.Client, recs); n != 0 {
		t.Fatalf("%d records written by an insert still in its transaction", n)
	}
	// Redis answers again while the undo waits: the undo goes through.
	proxy.Resume()
	if err := <-errc; err == nil {
		t.Fatal("Insert through a stalled Redis succeeded")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := 0
		for _, d := range pttls(t, db.Client, recs) {
			if d != -2 {
				left++
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d claims still held 10 s after Redis came back", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := countRecords(t, db.Client, recs); n != 0 {
		t.Fatalf("%d records left by a failed insert", n)
	}
	again := batchRecords("t", b.ID, 200)
	claims, err := NewRedis(db.Client, time.Hour).Insert(context.Background(), b, again)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range claims {
		if c.Record == nil {
			t.Fatalf("item %d: conflict with %q after the failed insert was undone", i, c.Existing)
		}
	}
	for i, d := range pttls(t, db.Client, again) {
		if d != -1 {
			t.Fatalf("claim %d of a written record has TTL %v, want none", i, d)
		}
	}
}

// When Redis stays stalled past the undo's own timeout, the claims lapse
// after their short TTL and the products can be submitted again.
func TestInsertClaimsLapseWhenTheUndoCannotRun(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	proxy := redistest.NewProxy(t, db.Addr)
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr(), DB: db.Number, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	hook := &txHook{onTx: proxy.Stall}
	rdb.AddHook(hook)
	s := NewRedis(rdb, time.Hour)
	s.claimTTL, s.undoTimeout = time.Second, 100*time.Millisecond
	recs := batchRecords("t", "", 50)
	hook.armed.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := s.Insert(ctx, nil, recs); err == nil {
		t.Fatal("Insert through a stalled Redis succeeded")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := 0
		for _, d := range pttls(t, db.Client, recs) {
			if d == -1 {
				t.Fatal("a claim of a failed insert became permanent")
			}
			if d != -2 {
				left++
			}
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d claims still held 10 s after a failed insert", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	claims, err := NewRedis(db.Client, time.Hour).Insert(context.Background(), nil, batchRecords("t", "", 50))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range claims {
		if c.Record == nil {
			t.Fatalf("item %d: conflict with %q after the claims lapsed", i, c.Existing)
		}
	}
	proxy.Resume()
}

// When a claim changes between the claims and the records' transaction
// (an undo of a stalled attempt ran first, or the claim lapsed), nothing
// is written.
func TestInsertWritesNothingWhenAClaimWasLost(t *testing.T) {
	t.Parallel()
	db := redistest.New(t)
	rdb := redis.NewClient(db.Options())
	t.Cleanup(func() { rdb.Close() })
	recs := batchRecords("t", "", 20)
	hook := &txHook{onTx: func() {
		r := recs[7]
		db.Client.Del(context.Background(), keyActive(r.UID, r.ProductKey, r.TargetInstanceID))
	}}
	rdb.AddHook(hook)
	hook.armed.Store(true)
	s := NewRedis(rdb, time.Hour)
	_, err := s.Insert(context.Background(), nil, recs)
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("Insert with a lost claim: err %v, want ErrConflict", err)
	}
	if n := countRecords(t, db.Client, recs); n != 0 {
		t.Fatalf("%d records written although a claim was lost", n)
	}
	for i, d := range pttls(t, db.Client, recs) {
		if d != -2 {
			t.Fatalf("claim %d left behind (pttl %v)", i, d)
		}
	}
}

// SweepClaims removes permanent claims whose record is missing and keeps
// the claims of existing records and of inserts in flight.
func TestSweepClaims(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := redistest.New(t)
	s := NewRedis(db.Client, time.Hour)
	live := newRecord("t", "live", time.Now())
	if _, err := s.Insert(ctx, nil, []*Record{live}); err != nil {
		t.Fatal(err)
	}
	leaked := newRecord("t", "leaked", time.Now())
	inFlight := newRecord("t", "inflight", time.Now())
	db.Client.Set(ctx, keyActive(leaked.UID, leaked.ProductKey, leaked.TargetInstanceID), leaked.ID, 0)
	db.Client.Set(ctx, keyActive(inFlight.UID, inFlight.ProductKey, inFlight.TargetInstanceID), inFlight.ID, time.Minute)
	n, err := s.SweepClaims(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("swept %d claims, want 1", n)
	}
	for _, c := range []struct {
		r    *Record
		want string
	}{{live, live.ID}, {leaked, ""}, {inFlight, inFlight.ID}} {
		got, err := s.ActiveOwner(ctx, c.r.UID, c.r.ProductKey, c.r.TargetInstanceID)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("claim of %s: owner %q, want %q", c.r.ProductKey, got, c.want)
		}
	}
	// A submission of the leaked product now succeeds.
	again := newRecord("t", "leaked", time.Now())
	claims, err := s.Insert(ctx, nil, []*Record{again})
	if err != nil || claims[0].Record == nil {
		t.Fatalf("insert after the sweep: %+v, %v", claims, err)
	}
}

// A conflict says which team owns the active distribution, and since when,
// so callers can answer another team's conflict without its id.
func TestInsertConflictNamesOwningTeam(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := NewRedis(redistest.New(t).Client, time.Hour)
	first := newRecord("a", "pk", time.Now())
	if _, err := s.Insert(ctx, nil, []*Record{first}); err != nil {
		t.Fatal(err)
	}
	claims, err := s.Insert(ctx, nil, []*Record{newRecord("b", "pk", time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	c := claims[0]
	if c.Record != nil || c.Existing != first.ID || c.ExistingTeam != "a" || !c.ExistingCreatedAt.Equal(first.CreatedAt) {
		t.Fatalf("claim %+v, want the conflict with %s of team a created %v", c, first.ID, first.CreatedAt)
	}
}

// cmdCounter counts the commands a client sends, by name.
type cmdCounter struct{ n sync.Map }

func (h *cmdCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *cmdCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.add(cmd.Name())
		return next(ctx, cmd)
	}
}
func (h *cmdCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.add(c.Name())
		}
		return next(ctx, cmds)
	}
}
func (h *cmdCounter) add(name string) {
	v, _ := h.n.LoadOrStore(name, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}
func (h *cmdCounter) get(name string) int64 {
	v, ok := h.n.Load(name)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

// Listing with another team's batch id reads none of that batch's items.
func TestListOfAnotherTeamsBatchReadsNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := redistest.New(t)
	s := NewRedis(db.Client, time.Hour)
	now := time.Now()
	b := &distribution.Batch{ID: distribution.NewBatchID(now), Team: "a", Account: "a", CreatedAt: now}
	if _, err := s.Insert(ctx, b, batchRecords("a", b.ID, 300)); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(db.Options())
	t.Cleanup(func() { rdb.Close() })
	count := &cmdCounter{}
	rdb.AddHook(count)
	other := NewRedis(rdb, time.Hour)
	recs, next, err := other.List(ctx, distribution.Filter{Team: "b", BatchID: b.ID, Limit: 100})
	if err != nil || len(recs) != 0 || next != "" {
		t.Fatalf("team b listing team a's batch: %d records, %q, %v; want none", len(recs), next, err)
	}
	if n := count.get("mget") + count.get("zrange"); n != 0 {
		t.Fatalf("team b's listing read team a's batch (%d reads of items)", n)
	}
	recs, _, err = other.List(ctx, distribution.Filter{Team: "a", BatchID: b.ID, Limit: 100})
	if err != nil || len(recs) != 100 {
		t.Fatalf("team a listing its batch: %d records, %v; want 100", len(recs), err)
	}
}
