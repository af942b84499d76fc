-- KEYS[1] -> distq:{uid}:slots  ZSET holder -> lease expiry (µs), or PINNED
-- ARGV[1] -> holder   ARGV[2] -> lease, µs (> 0)
-- Returns 1 when holder's unexpired lease now ends at now + lease (a pin stays a
-- pin), 0 when it held none (never had one, released it, or let it expire: the
-- slot may belong to another by now).
local now = now_us()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(now))
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not cur then return 0 end
if score(cur) >= PINNED then return 1 end
redis.call('ZADD', KEYS[1], 'XX', int(now + tonumber(ARGV[2])), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], int(math.ceil(score(last[2]) / 1000)))
return 1
