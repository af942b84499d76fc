-- KEYS[1] -> distq:{uid}:waiters  ZSET id -> first-seen order (µs)
-- ARGV[1] -> id   ARGV[2] -> key ttl, µs (> 0)   ARGV[3] -> "1" for a priority waiter
-- Returns 1 when id was added, 0 when it already waited (its place is kept).
-- Scores are Redis time in µs, bumped past the newest score of the same class so
-- the order is strict. Priority waiters score 10^15 µs (~31 years) earlier, so
-- every one of them is served before any ordinary waiter (invariant Q7).
local now = now_us()
local added = 0
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  local offset = 0
  if ARGV[3] == '1' then offset = 1e15 end
  local at = now - offset
  local last = redis.call('ZREVRANGEBYSCORE', KEYS[1], '(' .. int(now - offset + 1e14), '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if last[2] and score(last[2]) >= at then at = score(last[2]) + 1 end
  redis.call('ZADD', KEYS[1], int(at), ARGV[1])
  added = 1
end
redis.call('PEXPIRE', KEYS[1], int(math.ceil(tonumber(ARGV[2]) / 1000)))
return added
