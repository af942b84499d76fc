package store

import (
	"context"
	_ "embed"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

//go:embed sweep_claim.lua
var sweepClaimSrc string

var sweepClaim = redis.NewScript(sweepClaimSrc)

// SweepClaims removes active-key claims whose record does not exist: what
// an insert interrupted before this store made claims and records atomic
// left behind, which would otherwise answer every later submission of the
// product to the target with a conflict naming a missing id. Claims of an
// insert in flight (they still have their TTL) are left alone. It scans
// the whole keyspace, so callers run it rarely. It returns the number of
// claims removed.
func (s *Redis) SweepClaims(ctx context.Context) (int, error) {
	removed := 0
	var cursor uint64
	for {
		keys, next, err := s.rdb.Scan(ctx, cursor, patternActive, 1000).Result()
		if err != nil {
			return removed, fmt.Errorf("sweep claims: %w", err)
		}
		n, err := s.sweepKeys(ctx, keys)
		removed += n
		if err != nil {
			return removed, err
		}
		if next == 0 {
			return removed, nil
		}
		cursor = next
	}
}

func (s *Redis) sweepKeys(ctx context.Context, keys []string) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return 0, fmt.Errorf("sweep claims: %w", err)
	}
	if err := sweepClaim.Load(ctx, s.rdb).Err(); err != nil {
		return 0, fmt.Errorf("sweep claims: %w", err)
	}
	pipe := s.rdb.Pipeline()
	var cmds []*redis.Cmd
	for i, v := range vals {
		id, ok := v.(string)
		if !ok {
			continue
		}
		cmds = append(cmds, sweepClaim.EvalSha(ctx, pipe, []string{keys[i], keyRecord(id)}, id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("sweep claims: %w", err)
	}
	n := 0
	for _, c := range cmds {
		if v, _ := c.Int(); v == 1 {
			n++
		}
	}
	return n, nil
}
