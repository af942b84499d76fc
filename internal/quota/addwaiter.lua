-- KEYS[1] -> distq:{uid}:waiters  ZSET id -> first-seen order (µs)
-- ARGV[1] -> id   ARGV[2] -> key ttl, µs (> 0)
-- Returns 1 when id was added, 0 when it already waited (its place is kept).
-- Scores are Redis time in µs, bumped past the newest score so the order is strict.
local now = now_us()
local added = 0
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  local score = now
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if last[2] and tonumber(last[2]) >= score then score = tonumber(last[2]) + 1 end
  redis.call('ZADD', KEYS[1], int(score), ARGV[1])
  added = 1
end
redis.call('PEXPIRE', KEYS[1], int(math.ceil(tonumber(ARGV[2]) / 1000)))
return added
