package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/internal/distribution"
)

// What the team console reads beyond the records: a team's batches newest
// first, Creates sent per account, team and minute, each team's backlog,
// and the console's server-side sessions.

func keyCreates(uid string, minute int64) string {
	return prefix + "stats:{" + uid + "}:creates:" + strconv.FormatInt(minute, 10)
}
func keySession(id string) string { return prefix + "session:" + id }

// createsKeep is how long a minute's Create counts are kept.
const createsKeep = 2 * time.Hour

// countCreate counts, inside an update's transaction, the Create that a
// transition marked as sent (its attempt count went up): per account UID,
// minute and team.
func countCreate(ctx context.Context, p redis.Pipeliner, r *Record, at time.Time) {
	k := keyCreates(r.UID, at.Unix()/60)
	p.HIncrBy(ctx, k, r.Team, 1)
	p.Expire(ctx, k, createsKeep)
}

// CreatesPerMinute returns, for each of the n minutes up to and including
// the one of `to` (oldest first), the Creates sent for the account of uid
// per team.
func (s *Redis) CreatesPerMinute(ctx context.Context, uid string, to time.Time, n int) ([]map[string]int, error) {
	last := to.Unix() / 60
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, n)
	for i := range n {
		cmds[i] = pipe.HGetAll(ctx, keyCreates(uid, last-int64(n-1-i)))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("creates per minute: %w", err)
	}
	out := make([]map[string]int, n)
	for i, c := range cmds {
		out[i] = map[string]int{}
		for team, v := range c.Val() {
			out[i][team], _ = strconv.Atoi(v)
		}
	}
	return out, nil
}

// Backlog returns each team's unfinished distributions (queued, submitting
// or running), for the teams that have any.
func (s *Redis) Backlog(ctx context.Context) (map[string]int, error) {
	teams, err := s.rdb.SMembers(ctx, keyTeams).Result()
	if err != nil {
		return nil, fmt.Errorf("backlog: %w", err)
	}
	open := []distribution.State{distribution.StateQueued, distribution.StateSubmitting, distribution.StateRunning}
	pipe := s.rdb.Pipeline()
	cmds := map[string][]*redis.IntCmd{}
	for _, t := range teams {
		for _, st := range open {
			cmds[t] = append(cmds[t], pipe.ZCard(ctx, keyTeamState(t, string(st))))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("backlog: %w", err)
	}
	out := map[string]int{}
	for t, cs := range cmds {
		n := 0
		for _, c := range cs {
			n += int(c.Val())
		}
		if n > 0 {
			out[t] = n
		}
	}
	return out, nil
}

// QueuedByTeam returns each team's queued distributions, in every account,
// for the teams that have any: one ZCARD per team.
func (s *Redis) QueuedByTeam(ctx context.Context) (map[string]int, error) {
	teams, err := s.rdb.SMembers(ctx, keyTeams).Result()
	if err != nil {
		return nil, fmt.Errorf("queued by team: %w", err)
	}
	pipe := s.rdb.Pipeline()
	cmds := make(map[string]*redis.IntCmd, len(teams))
	for _, t := range teams {
		cmds[t] = pipe.ZCard(ctx, keyTeamState(t, string(distribution.StateQueued)))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("queued by team: %w", err)
	}
	out := map[string]int{}
	for t, c := range cmds {
		if n := int(c.Val()); n > 0 {
			out[t] = n
		}
	}
	return out, nil
}

// Teams returns the teams that have records.
func (s *Redis) Teams(ctx context.Context) ([]string, error) {
	return s.rdb.SMembers(ctx, keyTeams).Result()
}

// With REV, ZRANGE takes the maximum first.

// Batches returns up to limit of team's batch ids, newest first, older
// than the id before (all when before is "").
func (s *Redis) Batches(ctx context.Context, team, before string, limit int) ([]string, error) {
	stop := "+"
	if before != "" {
		stop = "(" + before
	}
	return s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: keyTeamBatches(team), Start: stop, Stop: "-", ByLex: true, Rev: true, Count: int64(limit)}).Result()
}

// Newest returns up to limit of team's distributions newest first that
// match f's state, product key and batch (f.After and f.Limit are ignored);
// single ones only when singles is true. It reads at most scan index
// entries.
func (s *Redis) Newest(ctx context.Context, f distribution.Filter, singles bool, limit, scan int) ([]*Record, error) {
	key := keyTeamAll(f.Team)
	switch {
	case f.BatchID != "":
		key = keyBatchItems(f.BatchID)
	case f.ProductKey != "":
		key = keyTeamProduct(f.Team, f.ProductKey)
	case f.State != "":
		key = keyTeamState(f.Team, string(f.State))
	}
	ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: key, Start: "+", Stop: "-", ByLex: true, Rev: true, Count: int64(scan)}).Result()
	if err != nil {
		return nil, fmt.Errorf("newest: %w", err)
	}
	recs, err := s.GetMany(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]*Record, 0, limit)
	for _, r := range recs {
		if r.Team != f.Team || f.State != "" && r.State != f.State || f.ProductKey != "" && r.ProductKey != f.ProductKey ||
			f.BatchID != "" && r.BatchID != f.BatchID || singles && r.BatchID != "" {
			continue
		}
		out = append(out, r)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

// PutSession keeps a console session's data under id until ttl passes.
func (s *Redis) PutSession(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	return s.rdb.Set(ctx, keySession(id), data, ttl).Err()
}

// GetSession returns a console session's data, or ErrNotFound once it
// expired or was deleted.
func (s *Redis) GetSession(ctx context.Context, id string) ([]byte, error) {
	b, err := s.rdb.Get(ctx, keySession(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	return b, err
}

// DeleteSession ends a console session.
func (s *Redis) DeleteSession(ctx context.Context, id string) error {
	return s.rdb.Del(ctx, keySession(id)).Err()
}
