-- ARGV[1] -> member "team\0order\0id"   ARGV[2] -> team   ARGV[3] -> admission ttl, µs
-- Returns 2 when the member is admitted (its admission now lasts ttl more), else 1:
-- it is queued (idempotent: a member queued again keeps its place, which its order
-- fixes) and its team is active.
local now = now_us()
if redis.call('ZSCORE', KEYS[5], ARGV[1]) then
  redis.call('ZADD', KEYS[5], int(now + tonumber(ARGV[3])), ARGV[1])
  return 2
end
redis.call('ZADD', KEYS[1], 'NX', 0, ARGV[1])
fair_activate(ARGV[2])
return 1
