-- KEYS[1] -> distq:{uid}:slots     ZSET holder -> lease expiry (µs)
-- KEYS[2] -> distq:{uid}:external  STRING remote jobs made outside distq
-- KEYS[3] -> distq:{uid}:waiters   ZSET id -> first-seen order (µs)
-- ARGV[1] -> holder   ARGV[2] -> limit   ARGV[3] -> lease, µs (> 0)
-- Returns {ok (1|0), in use after the call: unexpired leases + external}.
-- Expired leases are dropped first. A holder that already has a slot always
-- renews it (idempotent); a new holder gets one only if leases + external < limit.
-- A holder that gets a slot stops being a waiter.
local now = now_us()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(now))
local ext = tonumber(redis.call('GET', KEYS[2])) or 0
local expiry = now + tonumber(ARGV[3])
local ok = 0
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  ok = 1
elseif redis.call('ZCARD', KEYS[1]) + ext < tonumber(ARGV[2]) then
  ok = 1
end
if ok == 1 then
  redis.call('ZADD', KEYS[1], int(expiry), ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[1], int(math.ceil(tonumber(last[2]) / 1000)))
end
return {ok, redis.call('ZCARD', KEYS[1]) + ext}
