package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/distq/distq/internal/redistest"
)

// An Idempotency-Key in progress is held with a short TTL: after a crash
// (no Complete, no Abandon, no refresh) a replay may run within seconds,
// not 24 h; while the first request runs, KeepIdempotency holds the key;
// the 24 h start at completion.
func TestIdempotencyInFlightClaimIsShortAndRefreshed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := redistest.New(t)
	s := NewRedis(db.Client, time.Hour)

	if _, err := s.ClaimIdempotency(ctx, "t", "k", "h"); err != nil {
		t.Fatal(err)
	}
	if d := db.Client.PTTL(ctx, keyIdem("t", "k")).Val(); d <= 0 || d > IdempotencyInFlightTTL {
		t.Fatalf("in-flight claim TTL %v, want at most %v", d, IdempotencyInFlightTTL)
	}

	// A crash: the claim lapses and the replay becomes the first request.
	s.idemInFlightTTL = 300 * time.Millisecond
	if _, err := s.ClaimIdempotency(ctx, "t", "crash", "h"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		prev, err := s.ClaimIdempotency(ctx, "t", "crash", "h")
		if err == nil && prev == nil {
			break
		}
		if !errors.Is(err, ErrIdempotencyInFlight) {
			t.Fatalf("replay: %+v, %v", prev, err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the claim of a crashed request still held after 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A long request refreshes its claim: it stays in flight for many TTLs.
	if _, err := s.ClaimIdempotency(ctx, "t", "long", "h"); err != nil {
		t.Fatal(err)
	}
	stop := s.KeepIdempotency(ctx, "t", "long", "h")
	until := time.Now().Add(4 * s.idemInFlightTTL)
	for time.Now().Before(until) {
		if _, err := s.ClaimIdempotency(ctx, "t", "long", "h"); !errors.Is(err, ErrIdempotencyInFlight) {
			stop()
			t.Fatalf("refreshed claim lost: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := s.CompleteIdempotency(ctx, "t", "long", "h", 202, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if d := db.Client.PTTL(ctx, keyIdem("t", "long")).Val(); d < IdempotencyTTL-time.Minute {
		t.Fatalf("completed key TTL %v, want %v from completion", d, IdempotencyTTL)
	}
	prev, err := s.ClaimIdempotency(ctx, "t", "long", "h")
	if err != nil || prev == nil || prev.Status != 202 {
		t.Fatalf("replay after completion: %+v, %v; want the stored answer", prev, err)
	}
}
