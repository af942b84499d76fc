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

// List returns one page of a team's distributions in creation order and
// the cursor of the next page ("" at the end). Because ids sort by creation
// time and the cursor is an id, records inserted while a caller pages are
// neither skipped nor repeated.
func (s *Redis) List(ctx context.Context, f distribution.Filter) ([]*Record, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	// The most selective index, then the other filters in memory.
	key := keyTeamAll(f.Team)
	switch {
	case f.BatchID != "":
		key = keyBatchItems(f.BatchID)
	case f.ProductKey != "":
		key = keyTeamProduct(f.Team, f.ProductKey)
	case f.State != "":
		key = keyTeamState(f.Team, string(f.State))
	}
	var out []*Record
	after := f.After
	for len(out) < limit {
		start := "-"
		if after != "" {
			start = "(" + after
		}
		chunk := int64(max(limit*2, 50))
		ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: key, Start: start, Stop: "+", ByLex: true, Count: chunk}).Result()
		if err != nil {
			return nil, "", fmt.Errorf("list: %w", err)
		}
		if len(ids) == 0 {
			return out, "", nil
		}
		recs, err := s.GetMany(ctx, ids)
		if err != nil {
			return nil, "", err
		}
		byID := make(map[string]*Record, len(recs))
		for _, r := range recs {
			byID[r.ID] = r
		}
		for _, id := range ids {
			after = id
			r := byID[id]
			if r == nil || r.Team != f.Team ||
				f.State != "" && r.State != f.State ||
				f.BatchID != "" && r.BatchID != f.BatchID ||
				f.ProductKey != "" && r.ProductKey != f.ProductKey {
				continue
			}
			out = append(out, r)
			if len(out) == limit {
				return out, id, nil
			}
		}
		if int64(len(ids)) < chunk {
			return out, "", nil
		}
	}
	return out, after, nil
}

// GetBatch returns a batch and its counts per state, or ErrNotFound.
func (s *Redis) GetBatch(ctx context.Context, id string) (*distribution.BatchStatus, error) {
	pipe := s.rdb.Pipeline()
	b := pipe.Get(ctx, keyBatch(id))
	c := pipe.HGetAll(ctx, keyBatchCounts(id))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("get batch %s: %w", id, err)
	}
	raw, err := b.Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	out := &distribution.BatchStatus{Counts: map[distribution.State]int{}}
	if err := json.Unmarshal(raw, &out.Batch); err != nil {
		return nil, fmt.Errorf("decode batch %s: %w", id, err)
	}
	for _, st := range distribution.States {
		out.Counts[st] = 0
	}
	for k, v := range c.Val() {
		var n int
		fmt.Sscan(v, &n)
		out.Counts[distribution.State(k)] = n
	}
	return out, nil
}

// BatchItemIDs returns every id of a batch, in order.
func (s *Redis) BatchItemIDs(ctx context.Context, id string) ([]string, error) {
	return s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: keyBatchItems(id), Start: "-", Stop: "+", ByLex: true}).Result()
}

// CountOpenBefore returns how many unfinished distributions were accepted
// before t (the backlog ahead of a batch, for its ETA).
func (s *Redis) CountOpenBefore(ctx context.Context, t time.Time) (int64, error) {
	return s.rdb.ZCount(ctx, keyOpen, "-inf", fmt.Sprintf("(%d", t.UnixMilli())).Result()
}

// Trim removes index entries of records older than the retention, whose
// records have expired. It returns how many entries it removed.
func (s *Redis) Trim(ctx context.Context) (int64, error) {
	teams, err := s.rdb.SMembers(ctx, keyTeams).Result()
	if err != nil {
		return 0, err
	}
	floorD := distribution.IDFloor(distribution.KindDistribution, s.now().Add(-s.retention))
	floorB := distribution.IDFloor(distribution.KindBatch, s.now().Add(-s.retention))
	var removed int64
	for _, t := range teams {
		keys := []string{keyTeamAll(t)}
		for _, st := range distribution.States {
			keys = append(keys, keyTeamState(t, string(st)))
		}
		for _, k := range keys {
			// Only finished records expire; an old open one keeps its entry.
			ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: k, Start: "-", Stop: "(" + floorD, ByLex: true, Count: 1000}).Result()
			if err != nil {
				return removed, err
			}
			n, err := s.removeMissing(ctx, k, ids)
			removed += n
			if err != nil {
				return removed, err
			}
		}
		bids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: keyTeamBatches(t), Start: "-", Stop: "(" + floorB, ByLex: true, Count: 1000}).Result()
		if err != nil {
			return removed, err
		}
		for _, b := range bids {
			left, err := s.rdb.ZCard(ctx, keyBatchItems(b)).Result()
			if err != nil {
				return removed, err
			}
			ids, _ := s.BatchItemIDs(ctx, b)
			n, _ := s.removeMissing(ctx, keyBatchItems(b), ids)
			removed += n
			if left-n <= 0 {
				s.rdb.Del(ctx, keyBatch(b), keyBatchCounts(b), keyBatchItems(b), keyBatchEvent(b))
				s.rdb.ZRem(ctx, keyTeamBatches(t), b)
			}
		}
	}
	return removed, nil
}

func (s *Redis) removeMissing(ctx context.Context, key string, ids []string) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	pipe := s.rdb.Pipeline()
	ex := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		ex[i] = pipe.Exists(ctx, keyRecord(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, err
	}
	var gone []any
	for i, id := range ids {
		if ex[i].Val() == 0 {
			gone = append(gone, id)
		}
	}
	if len(gone) == 0 {
		return 0, nil
	}
	return s.rdb.ZRem(ctx, key, gone...).Result()
}
