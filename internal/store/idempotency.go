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

// IdempotencyTTL is how long an Idempotency-Key is remembered.
const IdempotencyTTL = 24 * time.Hour

// ErrIdempotencyInFlight: another request with the key has not finished.
var ErrIdempotencyInFlight = distribution.ErrIdempotencyInFlight

// ClaimIdempotency records that a request with key and bodyHash starts. It
// returns nil when the caller is the first (and must Complete or Abandon the
// key), or the stored entry when the key was seen: the caller compares the
// hash and replays the answer, or ErrIdempotencyInFlight while the first is
// still running.
func (s *Redis) ClaimIdempotency(ctx context.Context, team, key, bodyHash string) (*distribution.Idempotent, error) {
	raw, _ := json.Marshal(distribution.Idempotent{BodyHash: bodyHash})
	ok, err := s.rdb.SetNX(ctx, keyIdem(team, key), raw, IdempotencyTTL).Result()
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
