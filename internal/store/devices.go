package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/distq/distq/internal/devices"
)

// Device distributions in Redis:
//
//	distq:v:<id>                STRING the record (JSON)
//	distq:v:<id>:names:<n>      STRING job n's device names, one per line
//	distq:v:<id>:res:<n>        LIST   job n's per-device outcomes, in name order
//	distq:v:<id>:fail:<n>       LIST   the failed ones of them
//	distq:team:<team>:v         ZSET   the team's ids (lexical order = creation order)
//	distq:v:open                ZSET   ids not finished, by creation time (ms)
//
// An outcome is "name\tcode\tmessage\ttarget". A finished record, its
// names and outcomes expire after the retention; a retry takes the expiry
// off again.
func keyDev(id string) string                 { return prefix + "v:" + id }
func keyDevNames(id string, n int) string     { return keyDev(id) + ":names:" + strconv.Itoa(n) }
func keyDevResults(id string, n int) string   { return keyDev(id) + ":res:" + strconv.Itoa(n) }
func keyDevFailed(id string, n int) string    { return keyDev(id) + ":fail:" + strconv.Itoa(n) }
func keyTeamDevices(team string) string       { return prefix + "team:" + team + ":v" }
func keyDevKeys(id string, jobs int) []string { return devKeys(id, 0, jobs) }

const keyDevOpen = prefix + "v:open"

// devKeys lists the names and outcome keys of jobs [from, to) of id.
func devKeys(id string, from, to int) []string {
	keys := make([]string, 0, 3*(to-from))
	for n := from; n < to; n++ {
		keys = append(keys, keyDevNames(id, n), keyDevResults(id, n), keyDevFailed(id, n))
	}
	return keys
}

// InsertDevices writes a new device distribution and the device names of
// each of its jobs (names[n] for job n), in one transaction.
func (s *Redis) InsertDevices(ctx context.Context, r *devices.Record, names [][]string) error {
	if len(names) != len(r.Jobs) {
		return fmt.Errorf("insert device distribution %s: %d jobs, %d name lists", r.ID, len(r.Jobs), len(names))
	}
	raw, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode %s: %w", r.ID, err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, keyDev(r.ID), raw, 0)
		for n, ns := range names {
			p.Set(ctx, keyDevNames(r.ID, n), strings.Join(ns, "\n"), 0)
		}
		p.ZAdd(ctx, keyTeamDevices(r.Team), redis.Z{Member: r.ID})
		p.ZAdd(ctx, keyDevOpen, redis.Z{Score: float64(r.CreatedAt.UnixMilli()), Member: r.ID})
		p.SAdd(ctx, keyTeams, r.Team)
		return nil
	})
	if err != nil {
		return fmt.Errorf("insert device distribution %s: %w", r.ID, err)
	}
	return nil
}

// DeleteDevices removes a device distribution that could not be enqueued.
func (s *Redis) DeleteDevices(ctx context.Context, r *devices.Record) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, append(keyDevKeys(r.ID, len(r.Jobs)), keyDev(r.ID))...)
		p.ZRem(ctx, keyTeamDevices(r.Team), r.ID)
		p.ZRem(ctx, keyDevOpen, r.ID)
		return nil
	})
	return err
}

// GetDevices returns the device distribution id, or ErrNotFound.
func (s *Redis) GetDevices(ctx context.Context, id string) (*devices.Record, error) {
	raw, err := s.rdb.Get(ctx, keyDev(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", id, err)
	}
	var r devices.Record
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("decode %s: %w", id, err)
	}
	return &r, nil
}

// UpdateDevices changes device distribution id with fn, one of the
// record's named transitions, under compare-and-set (fn runs again on the
// new record when someone else wrote meanwhile). fn returning ErrNoChange
// leaves the record as it is. A record that becomes final gets the
// retention as expiry (with its names and outcomes) and leaves the open
// set (and, with a notify_url, its device_distribution.finished event is
// written in the same transaction); one that is retried loses the expiry
// and joins it again.
func (s *Redis) UpdateDevices(ctx context.Context, id string, fn func(r *devices.Record) error) (*devices.Record, error) {
	key := keyDev(id)
	var out *devices.Record
	txf := func(tx *redis.Tx) error {
		raw, err := tx.Get(ctx, key).Bytes()
		if errors.Is(err, redis.Nil) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		var r devices.Record
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("decode %s: %w", id, err)
		}
		was := r.State
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
			switch {
			case r.State.Terminal():
				p.Set(ctx, key, newRaw, s.retention)
				for _, k := range keyDevKeys(id, len(r.Jobs)) {
					p.Expire(ctx, k, s.retention)
				}
				p.ZRem(ctx, keyDevOpen, id)
				if !was.Terminal() {
					s.announceDevices(ctx, p, &r) // in this MULTI: see webhooks.go
				}
			default:
				p.Set(ctx, key, newRaw, 0)
				if was.Terminal() {
					for _, k := range keyDevKeys(id, len(r.Jobs)) {
						p.Persist(ctx, k)
					}
					p.ZAdd(ctx, keyDevOpen, redis.Z{Score: float64(s.now().UnixMilli()), Member: id})
				}
			}
			p.Publish(ctx, ChangesChannel, id)
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

// DeviceNames returns the device names of job n of id.
func (s *Redis) DeviceNames(ctx context.Context, id string, n int) ([]string, error) {
	v, err := s.rdb.Get(ctx, keyDevNames(id, n)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("device names of %s job %d: %w", id, n, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("device names of %s job %d: %w", id, n, err)
	}
	if v == "" {
		return nil, nil
	}
	return strings.Split(v, "\n"), nil
}

// PutDeviceNames writes the device names of new jobs of id (a retry's),
// names[i] for job first+i, before the record names the jobs.
func (s *Redis) PutDeviceNames(ctx context.Context, id string, first int, names [][]string) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i, ns := range names {
			p.Set(ctx, keyDevNames(id, first+i), strings.Join(ns, "\n"), 0)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("device names of %s: %w", id, err)
	}
	return nil
}

func encodeResult(r devices.Result) string {
	clean := func(s string) string { return strings.NewReplacer("\t", " ", "\n", " ").Replace(s) }
	return r.DeviceName + "\t" + clean(r.Code) + "\t" + clean(r.Message) + "\t" + clean(r.TargetInstanceID)
}

func decodeResult(s string, job int) devices.Result {
	parts := strings.SplitN(s, "\t", 4)
	for len(parts) < 4 {
		parts = append(parts, "")
	}
	return devices.Result{DeviceName: parts[0], Job: job, Code: parts[1], Message: parts[2], TargetInstanceID: parts[3]}
}

// resultChunk bounds the values of one RPUSH.
const resultChunk = 1000

// PutDeviceResults writes job n's per-device outcomes (replacing any
// written before: a repeat after a crash writes the same), before the
// record says the job ended.
func (s *Redis) PutDeviceResults(ctx context.Context, id string, n int, results []devices.Result) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, keyDevResults(id, n), keyDevFailed(id, n))
		var all, failed []any
		flush := func(force bool) {
			if len(all) >= resultChunk || force && len(all) > 0 {
				p.RPush(ctx, keyDevResults(id, n), all...)
				all = all[:0]
			}
			if len(failed) >= resultChunk || force && len(failed) > 0 {
				p.RPush(ctx, keyDevFailed(id, n), failed...)
				failed = failed[:0]
			}
		}
		for _, r := range results {
			v := encodeResult(r)
			all = append(all, v)
			if !r.Distributed() {
				failed = append(failed, v)
			}
			flush(false)
		}
		flush(true)
		return nil
	})
	if err != nil {
		return fmt.Errorf("device results of %s job %d: %w", id, n, err)
	}
	return nil
}

// DeviceResults returns up to count outcomes of job n of id from offset
// (only the failed ones when failedOnly), and the number there are.
func (s *Redis) DeviceResults(ctx context.Context, id string, n int, failedOnly bool, offset, count int) ([]devices.Result, int, error) {
	key := keyDevResults(id, n)
	if failedOnly {
		key = keyDevFailed(id, n)
	}
	pipe := s.rdb.Pipeline()
	total := pipe.LLen(ctx, key)
	var vals *redis.StringSliceCmd
	if count > 0 {
		vals = pipe.LRange(ctx, key, int64(offset), int64(offset+count-1))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, 0, fmt.Errorf("device results of %s job %d: %w", id, n, err)
	}
	var out []devices.Result
	if vals != nil {
		for _, v := range vals.Val() {
			out = append(out, decodeResult(v, n))
		}
	}
	return out, int(total.Val()), nil
}

// ListDevices returns up to limit of a team's device distributions after
// the id after (all when ""), in creation order, and the cursor of the
// next page ("" at the end).
func (s *Redis) ListDevices(ctx context.Context, team, after string, limit int) ([]*devices.Record, string, error) {
	if limit <= 0 {
		limit = 100
	}
	start := "-"
	if after != "" {
		start = "(" + after
	}
	var out []*devices.Record
	for {
		ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: keyTeamDevices(team), Start: start, Stop: "+", ByLex: true, Count: int64(limit + 1)}).Result()
		if err != nil {
			return nil, "", fmt.Errorf("list device distributions: %w", err)
		}
		if len(ids) == 0 {
			return out, "", nil
		}
		for _, id := range ids {
			start = "(" + id
			r, err := s.GetDevices(ctx, id)
			if errors.Is(err, ErrNotFound) {
				continue // expired
			}
			if err != nil {
				return nil, "", err
			}
			if r.Team != team {
				continue
			}
			if len(out) == limit {
				return out, out[limit-1].ID, nil
			}
			out = append(out, r)
		}
	}
}

// OpenDevices returns up to n ids of unfinished device distributions
// created (or retried) before `before`, oldest first, for the reconciler.
func (s *Redis) OpenDevices(ctx context.Context, before time.Time, n int64) ([]string, error) {
	return s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: keyDevOpen, Start: "-inf", Stop: fmt.Sprint(before.UnixMilli()), ByScore: true, Count: n,
	}).Result()
}

// TrimDevices removes from the teams' indexes the device distributions
// older than the retention whose records have expired.
func (s *Redis) TrimDevices(ctx context.Context) (int64, error) {
	teams, err := s.rdb.SMembers(ctx, keyTeams).Result()
	if err != nil {
		return 0, err
	}
	floor := devices.IDFloor(s.now().Add(-s.retention))
	var removed int64
	for _, t := range teams {
		k := keyTeamDevices(t)
		ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: k, Start: "-", Stop: "(" + floor, ByLex: true, Count: 1000}).Result()
		if err != nil {
			return removed, err
		}
		for _, id := range ids {
			n, err := s.rdb.Exists(ctx, keyDev(id)).Result()
			if err != nil {
				return removed, err
			}
			if n == 0 {
				if err := s.rdb.ZRem(ctx, k, id).Err(); err != nil {
					return removed, err
				}
				removed++
			}
		}
	}
	return removed, nil
}
