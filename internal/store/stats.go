package store

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

func keyJobSeconds(uid string) string { return prefix + "stats:{" + uid + "}:job_seconds" }

// ewma keeps an exponentially weighted mean (weight 0.2 for the new value).
var ewma = redis.NewScript(`
local v = tonumber(redis.call("GET", KEYS[1]))
local x = tonumber(ARGV[1])
if v then x = 0.8 * v + 0.2 * x end
redis.call("SET", KEYS[1], tostring(x), "EX", 604800)
return tostring(x)`)

// ObserveJobDuration feeds how long a remote job of the account ran (for
// batch ETAs and the poll schedule), and returns the new mean.
func (s *Redis) ObserveJobDuration(ctx context.Context, uid string, d time.Duration) (time.Duration, error) {
	v, err := ewma.Run(ctx, s.rdb, []string{keyJobSeconds(uid)}, d.Seconds()).Float64()
	if err != nil {
		return 0, err
	}
	return time.Duration(v * float64(time.Second)), nil
}

// JobDuration returns the account's recent mean remote job duration, or 0
// when none was seen.
func (s *Redis) JobDuration(ctx context.Context, uid string) (time.Duration, error) {
	v, err := s.rdb.Get(ctx, keyJobSeconds(uid)).Float64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return time.Duration(v * float64(time.Second)), err
}
