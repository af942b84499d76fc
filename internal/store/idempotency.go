package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/internal/distribution"
)

// IdempotencyTTL is how long an Idempotency-Key is remembered, from the
// answer of its first request.
const IdempotencyTTL = 24 * time.Hour

// IdempotencyInFlightTTL is how long the claim of a request in progress
// lives unless KeepIdempotency refreshes it: an api that crashed mid-request
// leaves the key "in progress" this long, not 24 h.
const IdempotencyInFlightTTL = 30 * time.Second

// ErrIdempotencyInFlight: another request with the key has not finished.
var ErrIdempotencyInFlight = distribution.ErrIdempotencyInFlight

// ClaimIdempotency records that a request with key and bodyHash starts. It
// returns nil when the caller is the first (and must Complete or Abandon the
// key), or the stored entry when the key was seen: the caller compares the
// hash and replays the answer, or ErrIdempotencyInFlight while the first is
// still running.
func (s *Redis) ClaimIdempotency(ctx context.Context, team, key, bodyHash string) (*distribution.Idempotent, error) {
	raw, _ := json.Marshal(distribution.Idempotent{BodyHash: bodyHash})
	ok, err := s.rdb.SetNX(ctx, keyIdem(team, key), raw, s.idemInFlightTTL).Result()
	if err != nil {
		return nil, fmt.Errorf("claim idempotency key: %w", err)
	}
	if ok {
		return nil, nil
	}
	got, err := s.rdb.Get(ctx, keyIdem(team, key)).Bytes()
	if errors.Is(err, redis.Nil) { // expired between the two calls
		return s.ClaimIdempotency(ctx, team, key, bodyHash)
	}
	if err != nil {
		return nil, fmt.Errorf("read idempotency key: %w", err)
	}
	var e distribution.Idempotent
	if err := json.Unmarshal(got, &e); err != nil {
		return nil, fmt.Errorf("decode idempotency key: %w", err)
	}
	if e.Status == 0 && e.BodyHash == bodyHash {
		return &e, ErrIdempotencyInFlight
	}
	return &e, nil
}

// refreshIfEquals extends KEYS[1]'s TTL to ARGV[2] ms while it holds ARGV[1].
var refreshIfEquals = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`)

// KeepIdempotency refreshes the in-progress claim of key (made by
// ClaimIdempotency with bodyHash) until the returned stop is called; the
// caller defers stop right after a successful claim.
func (s *Redis) KeepIdempotency(ctx context.Context, team, key, bodyHash string) (stop func()) {
	raw, _ := json.Marshal(distribution.Idempotent{BodyHash: bodyHash})
	ttl := s.idemInFlightTTL
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				rctx, rcancel := context.WithTimeout(ctx, ttl/3)
				refreshIfEquals.Run(rctx, s.rdb, []string{keyIdem(team, key)}, raw, ttl.Milliseconds())
				rcancel()
			}
		}
	}()
	return func() { cancel(); <-done }
}

// CompleteIdempotency stores the answer of the first request with key.
func (s *Redis) CompleteIdempotency(ctx context.Context, team, key, bodyHash string, status int, response []byte) error {
	raw, _ := json.Marshal(distribution.Idempotent{BodyHash: bodyHash, Status: status, Response: response})
	return s.rdb.Set(ctx, keyIdem(team, key), raw, IdempotencyTTL).Err()
}

// AbandonIdempotency forgets key after the first request failed, so that
// the caller may try again.
func (s *Redis) AbandonIdempotency(ctx context.Context, team, key string) error {
	return s.rdb.Del(ctx, keyIdem(team, key)).Err()
}
