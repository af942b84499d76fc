package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"
)

// keyPolls is the poll schedule: one member per remote job being polled
// (the poll's id), scored with the time of its next Query (Unix ms). A
// member being polled is scored with the end of its claim's lease, so a
// worker that dies mid-poll leaves it due again after the lease.
const keyPolls = prefix + "polls"

// claimPolls takes up to ARGV[3] polls due at ARGV[1] (ms) and leases each
// until ARGV[2], in one step: two workers never claim one poll. It answers
// the claimed members and the earliest score left (the next due time, or a
// lease's end), or false when the schedule is empty.
var claimPolls = redis.NewScript(`
local n = tonumber(ARGV[3])
local head = redis.call("ZRANGE", KEYS[1], 0, n, "WITHSCORES")
local now, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local due, next = {}, false
for i = 1, #head, 2 do
	local score = tonumber(head[i + 1])
	if score <= now and #due < n then
		due[#due + 1] = head[i]
	elseif not next or score < next then
		next = score
	end
end
for _, m in ipairs(due) do
	redis.call("ZADD", KEYS[1], "XX", lease, m)
end
if #due > 0 and (not next or lease < next) then next = lease end
if not next then return {due, false} end
return {due, tostring(next)}
`)

// SchedulePoll schedules the poll id at at, unless it is scheduled already
// (a repeat, or the reconciler making sure, never postpones a poll). It
// reports whether the poll was added.
func (s *Redis) SchedulePoll(ctx context.Context, id string, at time.Time) (bool, error) {
	n, err := s.rdb.ZAddNX(ctx, keyPolls, redis.Z{Score: float64(at.UnixMilli()), Member: id}).Result()
	if err != nil {
		return false, fmt.Errorf("schedule poll %s: %w", id, err)
	}
	return n == 1, nil
}

// keyPollRan is when a Query last found poll id's job running (Unix ms):
// the lower bound of its end, for the job duration estimate of whichever
// worker sees the end (the polls of one job move between workers). It
// expires on its own (pollRanTTL), so an ended poll leaves nothing behind.
func keyPollRan(id string) string { return prefix + "pollran:" + id }

// pollRanTTL outlives any gap between two polls of a job.
const pollRanTTL = 2 * time.Hour

// RescheduleRunningPoll is ReschedulePoll for a poll whose Query, asked at
// ranAt, found its job running: it also keeps ranAt (PollRanAt).
func (s *Redis) RescheduleRunningPoll(ctx context.Context, id string, at, ranAt time.Time) error {
	pipe := s.rdb.Pipeline()
	pipe.ZAddXX(ctx, keyPolls, redis.Z{Score: float64(at.UnixMilli()), Member: id})
	pipe.Set(ctx, keyPollRan(id), ranAt.UnixMilli(), pollRanTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("reschedule poll %s: %w", id, err)
	}
	return nil
}

// PollRanAt returns when a Query last found poll id's job running, as
// kept by RescheduleRunningPoll (ok false when not known).
func (s *Redis) PollRanAt(ctx context.Context, id string) (at time.Time, ok bool, err error) {
	ms, err := s.rdb.Get(ctx, keyPollRan(id)).Int64()
	switch {
	case errors.Is(err, redis.Nil):
		return time.Time{}, false, nil
	case err != nil:
		return time.Time{}, false, fmt.Errorf("poll %s last running: %w", id, err)
	}
	return time.UnixMilli(ms), true, nil
}

// ReschedulePoll moves the poll id, if still scheduled, to at.
func (s *Redis) ReschedulePoll(ctx context.Context, id string, at time.Time) error {
	if err := s.rdb.ZAddXX(ctx, keyPolls, redis.Z{Score: float64(at.UnixMilli()), Member: id}).Err(); err != nil {
		return fmt.Errorf("reschedule poll %s: %w", id, err)
	}
	return nil
}

// UnschedulePoll removes the poll id: its job ended.
func (s *Redis) UnschedulePoll(ctx context.Context, id string) error {
	if err := s.rdb.ZRem(ctx, keyPolls, id).Err(); err != nil {
		return fmt.Errorf("unschedule poll %s: %w", id, err)
	}
	return nil
}

// ClaimPolls claims up to n polls due at now, each leased until now+lease
// (see keyPolls). next is the earliest time anything in the schedule is due
// after the claim (zero when the schedule is empty).
func (s *Redis) ClaimPolls(ctx context.Context, now time.Time, lease time.Duration, n int) (ids []string, next time.Time, err error) {
	res, err := claimPolls.Run(ctx, s.rdb, []string{keyPolls},
		now.UnixMilli(), now.Add(lease).UnixMilli(), max(n, 0)).Slice()
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("claim polls: %w", err)
	}
	if len(res) != 2 {
		return nil, time.Time{}, fmt.Errorf("claim polls: script answered %d values, want 2", len(res))
	}
	due, _ := res[0].([]any)
	for _, m := range due {
		if id, ok := m.(string); ok {
			ids = append(ids, id)
		}
	}
	if sc, ok := res[1].(string); ok {
		var ms float64
		if _, err := fmt.Sscan(sc, &ms); err != nil {
			return ids, time.Time{}, fmt.Errorf("claim polls: score %q: %w", sc, err)
		}
		next = time.UnixMilli(int64(math.Round(ms)))
	}
	return ids, next, nil
}

// PollSchedule reports how many polls are scheduled and the earliest due
// time among them (zero when none), for the metrics.
func (s *Redis) PollSchedule(ctx context.Context) (n int64, first time.Time, err error) {
	pipe := s.rdb.Pipeline()
	card := pipe.ZCard(ctx, keyPolls)
	head := pipe.ZRangeWithScores(ctx, keyPolls, 0, 0)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, time.Time{}, fmt.Errorf("poll schedule: %w", err)
	}
	if zs := head.Val(); len(zs) > 0 {
		first = time.UnixMilli(int64(math.Round(zs[0].Score)))
	}
	return card.Val(), first, nil
}

// PollsDueAfter returns up to n polls due after t (earliest first).
func (s *Redis) PollsDueAfter(ctx context.Context, t time.Time, n int64) ([]string, error) {
	ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: keyPolls, Start: fmt.Sprintf("(%d", t.UnixMilli()), Stop: "+inf", ByScore: true, Count: n,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("polls due after %v: %w", t, err)
	}
	return ids, nil
}

// AdvancePolls moves each poll of at, if still scheduled, to its time
// there when that is sooner than its due time (never later).
func (s *Redis) AdvancePolls(ctx context.Context, at map[string]time.Time) error {
	if len(at) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	for id, t := range at {
		pipe.ZAddArgs(ctx, keyPolls, redis.ZAddArgs{XX: true, LT: true, Members: []redis.Z{{Score: float64(t.UnixMilli()), Member: id}}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("advance polls: %w", err)
	}
	return nil
}
