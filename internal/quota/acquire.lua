-- KEYS[1] -> distq:{uid}:slots     ZSET holder -> lease expiry (µs), or PINNED
-- KEYS[2] -> distq:{uid}:external  STRING remote jobs made outside distq
-- KEYS[3] -> distq:{uid}:waiters   ZSET id -> first-seen order (µs)
-- KEYS[4] -> distq:{uid}:slottok   HASH holder -> token of the run that holds it
-- ARGV[1] -> holder   ARGV[2] -> limit   ARGV[3] -> lease, µs (> 0)   ARGV[4] -> token ("" keeps it)
-- Returns {ok (1|0), in use after the call: unexpired leases + pins + external}.
-- Expired leases are dropped first (pins never expire). A holder that already has a
-- slot always keeps it (idempotent): a lease is renewed, a pin stays a pin. A new
-- holder gets one only if leases + pins + external < limit. A holder that gets a slot
-- stops being a waiter, and its token becomes ARGV[4].
local now = now_us()
local expired = redis.call('ZRANGE', KEYS[1], '-inf', int(now), 'BYSCORE')
for _, h in ipairs(expired) do redis.call('HDEL', KEYS[4], h) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(now))
local ext = tonumber(redis.call('GET', KEYS[2])) or 0
local expiry = now + tonumber(ARGV[3])
local ok = 0
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if cur then
  ok = 1
elseif redis.call('ZCARD', KEYS[1]) + ext < tonumber(ARGV[2]) then
  ok = 1
end
if ok == 1 then
  if not (cur and score(cur) >= PINNED) then
    redis.call('ZADD', KEYS[1], int(expiry), ARGV[1])
    if ARGV[4] ~= '' then redis.call('HSET', KEYS[4], ARGV[1], ARGV[4]) end
  end
  redis.call('ZREM', KEYS[3], ARGV[1])
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[1], int(math.ceil(score(last[2]) / 1000)))
end
return {ok, redis.call('ZCARD', KEYS[1]) + ext}
