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
	claimTTL  time.Duration
	// undoTimeout bounds the undo of a failed insert.
	undoTimeout time.Duration
	// idemInFlightTTL is IdempotencyInFlightTTL (tests shorten it).
	idemInFlightTTL time.Duration
	now             func() time.Time
	repl            replicaCache
}

// NewRedis returns a store on rdb; finished records expire after retention.
func NewRedis(rdb redis.UniversalClient, retention time.Duration) *Redis {
	if retention <= 0 {
		retention = 30 * 24 * time.Hour
	}
	return &Redis{rdb: rdb, retention: retention, claimTTL: DefaultClaimTTL, undoTimeout: defaultUndoTimeout,
		idemInFlightTTL: IdempotencyInFlightTTL, now: func() time.Time { return time.Now().UTC() }}
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

// Claim is the domain's result of claiming the active key of one new
// record.
type Claim = distribution.Claim

// DefaultClaimTTL is how long the active-key claims of an Insert live
// before the records' transaction makes them permanent: a claim whose
// records never get written (a Redis stall, a crash) lapses on its own.
const DefaultClaimTTL = 2 * time.Minute

// defaultUndoTimeout bounds the undo of a failed insert, which runs even
// when the caller's context is done.
const defaultUndoTimeout = 5 * time.Second

// Insert writes new records (all queued, all of one team) and
// their indexes, and the batch when b is not nil. A record whose (account
// UID, product, target) already has an active distribution is not written:
// its Claim names the existing one.
//
// Claims and records are written together or not at all: the claims are
// born with a short TTL and made permanent by the transaction that writes
// the records, which runs only if every claim is still the caller's
// (WATCH). On failure one pipeline, on a context the caller cannot cancel,
// removes whatever may have been written; a claim that even this cannot
// remove lapses after its TTL.
func (s *Redis) Insert(ctx context.Context, b *distribution.Batch, recs []*Record) ([]Claim, error) {
	claims := make([]Claim, len(recs))
	// 1. Claim the active keys, all in one round trip.
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.BoolCmd, len(recs))
	for i, r := range recs {
		cmds[i] = pipe.SetNX(ctx, keyActive(r.UID, r.ProductKey, r.TargetInstanceID), r.ID, s.claimTTL)
	}
	_, err := pipe.Exec(ctx)
	var won []*Record
	var lost []int
	for i, r := range recs {
		claims[i].Record = r
		switch {
		case err != nil && cmds[i].Err() != nil:
			// Unknown outcome: the undo removes the claim if it is ours.
			won = append(won, r)
		case cmds[i].Val():
			won = append(won, r)
		default:
			lost = append(lost, i)
		}
	}
	if err != nil {
		s.undoInsert(ctx, b, won)
		return nil, fmt.Errorf("claim active keys: %w", err)
	}
	if len(lost) > 0 {
		if err := s.readOwners(ctx, recs, lost, claims); err != nil {
			s.undoInsert(ctx, b, won)
			return nil, err
		}
	}
	// 2. Write the records that won their key, in one transaction, with
	// one command per index rather than one per record and index.
	if len(won) == 0 && b == nil {
		return claims, nil
	}
	if err := s.writeRecords(ctx, b, won); err != nil {
		s.undoInsert(ctx, b, won)
		return nil, err
	}
	return claims, nil
}

// readOwners fills the Existing fields of the lost claims.
func (s *Redis) readOwners(ctx context.Context, recs []*Record, lost []int, claims []Claim) error {
	pipe := s.rdb.Pipeline()
	gets := make([]*redis.StringCmd, len(lost))
	for j, i := range lost {
		r := recs[i]
		gets[j] = pipe.Get(ctx, keyActive(r.UID, r.ProductKey, r.TargetInstanceID))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("read active keys: %w", err)
	}
	ids := make([]string, len(lost))
	for j, i := range lost {
		ids[j] = gets[j].Val()
		claims[i].Existing = ids[j]
		claims[i].Record = nil
	}
	owners, err := s.GetMany(ctx, ids)
	if err != nil {
		return err
	}
	byID := make(map[string]*Record, len(owners))
	for _, o := range owners {
		byID[o.ID] = o
	}
	for _, i := range lost {
		if o := byID[claims[i].Existing]; o != nil {
			claims[i].ExistingTeam, claims[i].ExistingCreatedAt = o.Team, o.CreatedAt
		}
	}
	return nil
}

// errClaimLost: a claim changed between the claim and the records'
// transaction (it lapsed, or an undo removed it).
var errClaimLost = fmt.Errorf("an active-key claim lapsed before the records were written: %w", ErrConflict)

// writeRecords writes the batch and the records in one transaction that
// also makes their claims permanent, under WATCH of the claims.
func (s *Redis) writeRecords(ctx context.Context, b *distribution.Batch, won []*Record) error {
	now := s.now()
	claimKeys := make([]string, len(won))
	sets := make([]any, 0, 2*len(won))
	for i, r := range won {
		claimKeys[i] = keyActive(r.UID, r.ProductKey, r.TargetInstanceID)
		raw, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode %s: %w", r.ID, err)
		}
		sets = append(sets, keyRecord(r.ID), raw)
	}
	txf := func(tx *redis.Tx) error {
		if len(won) > 0 {
			// The claims must still be ours: an undo that ran first (after a
			// stall) removed them, and then nothing may be written.
			vals, err := tx.MGet(ctx, claimKeys...).Result()
			if err != nil {
				return fmt.Errorf("read claims: %w", err)
			}
			for i, v := range vals {
				if v != won[i].ID {
					return errClaimLost
				}
			}
		}
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if b != nil {
				raw, _ := json.Marshal(b)
				p.Set(ctx, keyBatch(b.ID), raw, 0)
				p.ZAdd(ctx, keyTeamBatches(b.Team), redis.Z{Member: b.ID})
			}
			if len(won) > 0 {
				byKey := map[string][]redis.Z{}
				open := make([]redis.Z, 0, len(won))
				batchCounts := map[string]int64{}
				for _, r := range won {
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
				p.MSet(ctx, sets...)
				for k, ms := range byKey {
					p.ZAdd(ctx, k, ms...)
				}
				for id, n := range batchCounts {
					p.HIncrBy(ctx, keyBatchCounts(id), string(distribution.StateQueued), n)
				}
				p.ZAdd(ctx, keyOpen, open...)
				for _, k := range claimKeys {
					p.Persist(ctx, k)
				}
			}
			if b != nil && b.NotifyURL != "" && len(won) == 0 {
				s.announceEmptyBatch(ctx, p, b.ID) // in this MULTI: see webhooks.go
			}
			p.SAdd(ctx, keyTeams, teamOf(b, won))
			return nil
		})
		return err
	}
	err := s.rdb.Watch(ctx, txf, claimKeys...)
	if errors.Is(err, redis.TxFailedErr) {
		err = errClaimLost
	}
	if err != nil {
		return fmt.Errorf("write records: %w", err)
	}
	return nil
}

func teamOf(b *distribution.Batch, recs []*Record) string {
	if b != nil {
		return b.Team
	}
	return recs[0].Team
}

// undoInsert removes, in one transaction on a context the caller cannot
// cancel, everything a failed Insert may have written: the records, their
// indexes, the batch and the claims that are still the records'. It waits
// for the undo at most undoWait, so that a hung Redis still gets a prompt
// answer to the client; the undo itself goes on up to undoTimeout.
func (s *Redis) undoInsert(ctx context.Context, b *distribution.Batch, won []*Record) {
	if len(won) == 0 && b == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.undoTimeout)
		defer cancel()
		tx := s.rdb.TxPipeline()
		s.deleteRecords(ctx, tx, won)
		if b != nil {
			tx.Del(ctx, keyBatch(b.ID), keyBatchCounts(b.ID), keyBatchItems(b.ID))
			tx.ZRem(ctx, keyTeamBatches(b.Team), b.ID)
		}
		_, _ = tx.Exec(ctx) // what this cannot remove, the claims' TTL and the reconciler's sweep do
	}()
	t := time.NewTimer(undoWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// undoWait is how long a failed Insert waits for its undo.
const undoWait = time.Second

// delIfEqualsSrc deletes KEYS[1] if it holds ARGV[1]. Inside MULTI it is
// sent with EVAL: EVALSHA's NOSCRIPT fallback cannot run in a transaction.
const delIfEqualsSrc = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`

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
	s.deleteRecords(ctx, tx, recs)
	if _, err := tx.Exec(ctx); err != nil {
		return fmt.Errorf("delete records: %w", err)
	}
	return nil
}

// deleteRecords queues on tx the removal of recs, their indexes and their
// active keys (when still theirs).
func (s *Redis) deleteRecords(ctx context.Context, tx redis.Pipeliner, recs []*Record) {
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
		if k := waitingKey(r); k != "" {
			tx.SRem(ctx, k, r.ID)
		}
	}
}

// waitingKey is the waiting set r belongs to, or "" when r does not wait.
func waitingKey(r *Record) string {
	if r.State != distribution.StateQueued || r.WaitReason == "" {
		return ""
	}
	return keyWaiting(r.Account, string(r.WaitReason))
}

// Waiting returns how many queued distributions of each account wait for
// each reason, from sets kept in the records' transactions: the same
// answer from every process, exact at the time of the call.
func (s *Redis) Waiting(ctx context.Context, accounts []string, reasons []distribution.WaitReason) (map[[2]string]int64, error) {
	pipe := s.rdb.Pipeline()
	cmds := map[[2]string]*redis.IntCmd{}
	for _, a := range accounts {
		for _, r := range reasons {
			cmds[[2]string{a, string(r)}] = pipe.SCard(ctx, keyWaiting(a, string(r)))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("count waiting: %w", err)
	}
	out := make(map[[2]string]int64, len(cmds))
	for k, c := range cmds {
		out[k] = c.Val()
	}
	return out, nil
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
		oldRec := r
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
			if was, is := waitingKey(&oldRec), waitingKey(&r); was != is {
				if was != "" {
					p.SRem(ctx, was, r.ID)
				}
				if is != "" {
					p.SAdd(ctx, is, r.ID)
				}
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
