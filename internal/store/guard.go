package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/internal/distribution"
)

// ClaimJob records that remote job jobID belongs to distribution id, unless
// another distribution claimed it first; it returns the owner after the
// call (id when the claim held or was id's already). The claim lasts the
// retention of finished records. A lookup in the remote job list adopts
// only jobs it could claim, so no job is ever adopted by two distributions.
func (s *Redis) ClaimJob(ctx context.Context, jobID, id string) (owner string, err error) {
	if jobID == "" || id == "" {
		return "", errors.New("claim job: empty job id or distribution id")
	}
	ok, err := s.rdb.SetNX(ctx, keyJob(jobID), id, s.retention).Result()
	if err != nil {
		return "", fmt.Errorf("claim job %s: %w", jobID, err)
	}
	if ok {
		return id, nil
	}
	return s.JobOwner(ctx, jobID)
}

// JobOwner returns the distribution that claimed remote job jobID, "" when none.
func (s *Redis) JobOwner(ctx context.Context, jobID string) (string, error) {
	id, err := s.rdb.Get(ctx, keyJob(jobID)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("owner of job %s: %w", jobID, err)
	}
	return id, nil
}

// Untouched reports whether no worker has acted on r yet: still queued,
// never attempted, no Create marker, no job.
func Untouched(r *Record) bool {
	return r.State == distribution.StateQueued && r.CreateSentAt == nil && r.JobID == "" && r.Attempts == 0
}

// DeleteIfUntouched is the api's undo after a failed enqueue, as a
// compare-and-set per record: a record is deleted, with its indexes, only
// while it is Untouched. A worker may already run a record whose enqueue
// reported an error (the task was written, the answer lost); such a record
// is kept, and with it any Create marker or job. It returns the ids kept.
func (s *Redis) DeleteIfUntouched(ctx context.Context, recs []*Record) (kept []string, err error) {
	for _, want := range recs {
		key := keyRecord(want.ID)
		deleted := false
		txf := func(tx *redis.Tx) error {
			deleted = false
			raw, err := tx.Get(ctx, key).Bytes()
			if errors.Is(err, redis.Nil) {
				return nil
			}
			if err != nil {
				return err
			}
			var r Record
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("decode %s: %w", want.ID, err)
			}
			if !Untouched(&r) {
				return nil
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Del(ctx, key)
				p.ZRem(ctx, keyTeamAll(r.Team), r.ID)
				p.ZRem(ctx, keyTeamProduct(r.Team, r.ProductKey), r.ID)
				p.ZRem(ctx, keyTeamState(r.Team, string(r.State)), r.ID)
				p.ZRem(ctx, keyOpen, r.ID)
				if r.BatchID != "" {
					p.ZRem(ctx, keyBatchItems(r.BatchID), r.ID)
					p.HIncrBy(ctx, keyBatchCounts(r.BatchID), string(r.State), -1)
				}
				p.Eval(ctx, delIfEqualsSrc, []string{keyActive(r.UID, r.ProductKey, r.TargetInstanceID)}, r.ID)
				return nil
			})
			deleted = err == nil
			return err
		}
		var werr error
		for range 50 {
			werr = s.rdb.Watch(ctx, txf, key)
			if !errors.Is(werr, redis.TxFailedErr) {
				break
			}
		}
		if werr != nil {
			return kept, fmt.Errorf("undo %s: %w", want.ID, werr)
		}
		if !deleted {
			if _, err := s.Get(ctx, want.ID); err == nil {
				kept = append(kept, want.ID)
			}
		}
	}
	return kept, nil
}

// ErrNotReplicated is returned by WaitReplicas when a write was not
// acknowledged by the replicas in time: the caller must not act on it.
var ErrNotReplicated = errors.New("write not acknowledged by the replicas")

// replicaCache remembers how many replicas the master has, for WaitReplicas.
type replicaCache struct {
	mu   sync.Mutex
	n    int
	at   time.Time
	aof  bool
	init bool
}

// WaitReplicas makes the writes this client made so far durable before the
// caller acts on them (the Create marker before a Create goes out): when
// the master has replicas, WAIT until all of them acknowledged (and, with
// appendonly on, WAITAOF for the local fsync), within timeout. Fewer
// acknowledgements fail closed with ErrNotReplicated. Without replicas it
// does nothing. The replica count is read from INFO replication at most
// every 5 s. Redis Sentinel setups should also set min-replicas-to-write
// (docs/RELIABILITY.md).
func (s *Redis) WaitReplicas(ctx context.Context, timeout time.Duration) error {
	c := &s.repl
	c.mu.Lock()
	if !c.init || time.Since(c.at) > 5*time.Second {
		// INFO with no section (the default sections hold replication and
		// persistence): embedded Redis-compatible servers (miniredis, for
		// `make run`) take no more than one argument and show neither.
		info, err := s.rdb.Info(ctx).Result()
		if err != nil {
			c.mu.Unlock()
			return fmt.Errorf("replication info: %w", err)
		}
		c.n, c.aof = infoInt(info, "connected_slaves"), infoInt(info, "aof_enabled") == 1
		c.at, c.init = time.Now(), true
	}
	n, aof := c.n, c.aof
	c.mu.Unlock()
	if n == 0 {
		return nil
	}
	ms := max(timeout.Milliseconds(), 1)
	acked, err := s.rdb.Do(ctx, "WAIT", n, ms).Int()
	if err != nil {
		return fmt.Errorf("wait for replicas: %w", err)
	}
	if acked < n {
		return fmt.Errorf("%w: %d of %d replicas within %v", ErrNotReplicated, acked, n, timeout)
	}
	if aof {
		res, err := s.rdb.Do(ctx, "WAITAOF", 1, 0, ms).Int64Slice()
		if err != nil && !strings.Contains(err.Error(), "unknown command") {
			return fmt.Errorf("waitaof: %w", err)
		}
		if err == nil && len(res) == 2 && res[0] < 1 {
			return fmt.Errorf("%w: local AOF fsync not confirmed within %v", ErrNotReplicated, timeout)
		}
	}
	return nil
}

func infoInt(info, field string) int {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}
