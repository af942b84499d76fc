// Package store keeps distq's records — distributions, batches, their
// indexes and idempotency keys — in Redis. It exists so that the api and
// every worker agree on one record per distribution, changed only through
// compare-and-set transactions that keep the indexes and batch counts in
// step with the record, and announced on a Pub/Sub channel for long polls.
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

// Errors of the store: the domain's, so that the use cases recognise them
// without importing the store.
var (
	ErrNotFound = distribution.ErrNotFound
	ErrConflict = distribution.ErrConflict
)

// Record is the domain's record, as the store keeps it.
type Record = distribution.Record

// Redis is the store. It is safe for concurrent use.
type Redis struct {
	rdb       redis.UniversalClient
	retention time.Duration
	now       func() time.Time
	repl      replicaCache
}

// NewRedis returns a store on rdb; finished records expire after retention.
func NewRedis(rdb redis.UniversalClient, retention time.Duration) *Redis {
	if retention <= 0 {
		retention = 30 * 24 * time.Hour
	}
	return &Redis{rdb: rdb, retention: retention, now: func() time.Time { return time.Now().UTC() }}
}

// Client returns the Redis client of the store.
func (s *Redis) Client() redis.UniversalClient { return s.rdb }

// Get returns the record of id, or ErrNotFound.
func (s *Redis) Get(ctx context.Context, id string) (*Record, error) {
	raw, err := s.rdb.Get(ctx, keyRecord(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", id, err)
	}
	var r Record
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("decode %s: %w", id, err)
	}
	return &r, nil
}

// GetMany returns the records of ids that exist, in order.
func (s *Redis) GetMany(ctx context.Context, ids []string) ([]*Record, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = keyRecord(id)
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("get records: %w", err)
	}
	out := make([]*Record, 0, len(ids))
	for _, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue
		}
		var r Record
		if err := json.Unmarshal([]byte(str), &r); err != nil {
			return nil, fmt.Errorf("decode record: %w", err)
		}
		out = append(out, &r)
	}
	return out, nil
}

// Insert writes new records (all queued) and their indexes, and the batch
// when b is not nil. A record whose (account UID, product, target) already
// has an active distribution is not written: its Claim names the existing
// one. The write of the claimed records is one transaction.
func (s *Redis) Insert(ctx context.Context, b *distribution.Batch, recs []*Record) ([]distribution.Claim, error) {
	claims := make([]distribution.Claim, len(recs))
	// 1. Claim the active keys, all in one round trip.
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.BoolCmd, len(recs))
	for i, r := range recs {
		cmds[i] = pipe.SetNX(ctx, keyActive(r.UID, r.ProductKey, r.TargetInstanceID), r.ID, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("claim active keys: %w", err)
	}
	var lost []int
	for i, r := range recs {
		claims[i].Record = r
		if !cmds[i].Val() {
			lost = append(lost, i)
		}
	}
	if len(lost) > 0 {
		pipe := s.rdb.Pipeline()
		gets := make([]*redis.StringCmd, len(lost))
		for j, i := range lost {
			r := recs[i]
			gets[j] = pipe.Get(ctx, keyActive(r.UID, r.ProductKey, r.TargetInstanceID))
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			s.releaseActive(ctx, recs, claims)
			return nil, fmt.Errorf("read active keys: %w", err)
		}
		for j, i := range lost {
			claims[i].Existing = gets[j].Val()
			claims[i].Record = nil
		}
	}
	// 2. Write the records that won their key, in one transaction, with
	// one command per index rather than one per record and index.
	now := s.now()
	tx := s.rdb.TxPipeline()
	if b != nil {
		raw, _ := json.Marshal(b)
		tx.Set(ctx, keyBatch(b.ID), raw, 0)
		tx.ZAdd(ctx, keyTeamBatches(b.Team), redis.Z{Member: b.ID})
	}
	var won []*Record
	for _, c := range claims {
		if c.Record != nil {
			won = append(won, c.Record)
		}
	}
	if len(won) > 0 {
		sets := make([]any, 0, 2*len(won))
		byKey := map[string][]redis.Z{}
		open := make([]redis.Z, 0, len(won))
		batchCounts := map[string]int64{}
		for _, r := range won {
			raw, err := json.Marshal(r)
			if err != nil {
				s.releaseActive(ctx, recs, claims)
				return nil, fmt.Errorf("encode %s: %w", r.ID, err)
			}
			sets = append(sets, keyRecord(r.ID), raw)
			m := redis.Z{Member: r.ID}
			for _, k := range []string{keyTeamAll(r.Team), keyTeamProduct(r.Team, r.ProductKey), keyTeamState(r.Team, string(r.State))} {
				byKey[k] = append(byKey[k], m)
			}
			if r.BatchID != "" {
				byKey[keyBatchItems(r.BatchID)] = append(byKey[keyBatchItems(r.BatchID)], m)
				batchCounts[r.BatchID]++
			}
			open = append(open, redis.Z{Score: float64(now.UnixMilli()), Member: r.ID})
		}
		tx.MSet(ctx, sets...)
		for k, ms := range byKey {
			tx.ZAdd(ctx, k, ms...)
		}
		for id, n := range batchCounts {
			tx.HIncrBy(ctx, keyBatchCounts(id), string(distribution.StateQueued), n)
		}
		tx.ZAdd(ctx, keyOpen, open...)
	}
	if b != nil && b.NotifyURL != "" && len(won) == 0 {
		s.announceEmptyBatch(ctx, tx, b.ID)
	}
	if len(won) > 0 || b != nil {
		tx.SAdd(ctx, keyTeams, teamOf(b, recs))
		if _, err := tx.Exec(ctx); err != nil {
			s.releaseActive(ctx, recs, claims)
			return nil, fmt.Errorf("write records: %w", err)
		}
	}
	return claims, nil
}

func teamOf(b *distribution.Batch, recs []*Record) string {
	if b != nil {
		return b.Team
	}
	return recs[0].Team
}

// releaseActive undoes the active-key claims of a failed insert.
func (s *Redis) releaseActive(ctx context.Context, recs []*Record, claims []distribution.Claim) {
	for i, c := range claims {
		if c.Record != nil {
			r := recs[i]
			delIfEquals.Run(ctx, s.rdb, []string{keyActive(r.UID, r.ProductKey, r.TargetInstanceID)}, r.ID)
		}
	}
}

// delIfEqualsSrc deletes KEYS[1] if it holds ARGV[1]. Inside MULTI it is
// sent with EVAL: EVALSHA's NOSCRIPT fallback cannot run in a transaction.
const delIfEqualsSrc = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`

var delIfEquals = redis.NewScript(delIfEqualsSrc)

// index adds r's index entries for its state (and removes those of
// oldState when it is not empty) inside a transaction.
func (s *Redis) index(ctx context.Context, tx redis.Pipeliner, r *Record, oldState distribution.State) {
	member := redis.Z{Member: r.ID}
	if oldState == "" {
		tx.ZAdd(ctx, keyTeamAll(r.Team), member)
		tx.ZAdd(ctx, keyTeamProduct(r.Team, r.ProductKey), member)
		if r.BatchID != "" {
			tx.ZAdd(ctx, keyBatchItems(r.BatchID), member)
		}
	} else {
		tx.ZRem(ctx, keyTeamState(r.Team, string(oldState)), r.ID)
		if r.BatchID != "" {
			tx.HIncrBy(ctx, keyBatchCounts(r.BatchID), string(oldState), -1)
		}
	}
	tx.ZAdd(ctx, keyTeamState(r.Team, string(r.State)), member)
	if r.BatchID != "" {
		tx.HIncrBy(ctx, keyBatchCounts(r.BatchID), string(r.State), 1)
	}
}

// Delete removes records that were inserted but could not be enqueued, with
// their indexes, so no half-written record stays behind.
func (s *Redis) Delete(ctx context.Context, recs []*Record) error {
	tx := s.rdb.TxPipeline()
	for _, r := range recs {
		tx.Del(ctx, keyRecord(r.ID))
		tx.ZRem(ctx, keyTeamAll(r.Team), r.ID)
		tx.ZRem(ctx, keyTeamProduct(r.Team, r.ProductKey), r.ID)
		tx.ZRem(ctx, keyTeamState(r.Team, string(r.State)), r.ID)
		tx.ZRem(ctx, keyOpen, r.ID)
		if r.BatchID != "" {
			tx.ZRem(ctx, keyBatchItems(r.BatchID), r.ID)
			tx.HIncrBy(ctx, keyBatchCounts(r.BatchID), string(r.State), -1)
		}
		tx.Eval(ctx, delIfEqualsSrc, []string{keyActive(r.UID, r.ProductKey, r.TargetInstanceID)}, r.ID)
	}
	if _, err := tx.Exec(ctx); err != nil {
		return fmt.Errorf("delete records: %w", err)
	}
	return nil
}

// DeleteBatch removes a batch record (after its items were deleted).
func (s *Redis) DeleteBatch(ctx context.Context, b *distribution.Batch) error {
	return s.rdb.Del(ctx, keyBatch(b.ID), keyBatchCounts(b.ID), keyBatchItems(b.ID)).Err()
}

// ErrNoChange tells Update that fn decided to leave the record as it is.
var ErrNoChange = distribution.ErrNoChange

// Update changes the record of id with fn under compare-and-set: fn sees the
// current record and changes it, by calling one of the record's named
// transitions; the write happens only if nobody changed
// the record meanwhile (else fn runs again on the new one). Indexes, batch
// counts and the active key follow the state. fn returning ErrNoChange
// leaves the record untouched and Update returns it with a nil error; any
// other error of fn is returned as is.
func (s *Redis) Update(ctx context.Context, id string, fn func(r *Record) error) (*Record, error) {
	key := keyRecord(id)
	var out *Record
	txf := func(tx *redis.Tx) error {
		raw, err := tx.Get(ctx, key).Bytes()
		if errors.Is(err, redis.Nil) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		var r Record
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("decode %s: %w", id, err)
		}
		old, oldAttempts := r.State, r.Attempts
		if err := fn(&r); err != nil {
			if errors.Is(err, ErrNoChange) {
				out = &r
				return nil
			}
			return err
		}
		r.Touch(s.now())
		newRaw, err := json.Marshal(&r)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			ttl := time.Duration(0)
			if r.State.Terminal() {
				ttl = s.retention
			}
			p.Set(ctx, key, newRaw, ttl)
			if r.Attempts > oldAttempts { // a Create is about to be sent
				countCreate(ctx, p, &r, r.UpdatedAt)
			}
			if r.State != old {
				s.index(ctx, p, &r, old)
				if r.State.Terminal() {
					p.ZRem(ctx, keyOpen, r.ID)
					p.Eval(ctx, delIfEqualsSrc, []string{keyActive(r.UID, r.ProductKey, r.TargetInstanceID)}, r.ID)
				}
				if old.Terminal() && !r.State.Terminal() { // retry
					p.ZAdd(ctx, keyOpen, redis.Z{Score: float64(s.now().UnixMilli()), Member: r.ID})
					p.SetNX(ctx, keyActive(r.UID, r.ProductKey, r.TargetInstanceID), r.ID, 0)
				}
				if r.State.Terminal() && !old.Terminal() {
					s.announce(ctx, p, &r) // in this MULTI: see webhooks.go
				}
				if r.BatchID != "" {
					p.Publish(ctx, ChangesChannel, r.BatchID) // the batch's counts changed
				}
			}
			p.Publish(ctx, ChangesChannel, r.ID)
			return nil
		})
		out = &r
		return err
	}
	for range 50 {
		err := s.rdb.Watch(ctx, txf, key)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, fmt.Errorf("update %s: %w", id, ErrConflict)
}

// Open returns up to n ids of unfinished distributions created before
// `before`, oldest first, for the reconciler.
func (s *Redis) Open(ctx context.Context, before time.Time, n int64) ([]string, error) {
	return s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: keyOpen, Start: "-inf", Stop: fmt.Sprint(before.UnixMilli()), ByScore: true, Count: n,
	}).Result()
}

// ActiveOwner returns the id holding the active key of (uid, product, target).
func (s *Redis) ActiveOwner(ctx context.Context, uid, pk, target string) (string, error) {
	id, err := s.rdb.Get(ctx, keyActive(uid, pk, target)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return id, err
}
