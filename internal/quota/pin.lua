-- KEYS[1] -> distq:{uid}:slots     ZSET holder -> lease expiry (µs), or PINNED
-- KEYS[2] -> distq:{uid}:external  STRING remote jobs made outside distq
-- KEYS[3] -> distq:{uid}:waiters   ZSET id -> first-seen order (µs)
-- KEYS[4] -> distq:{uid}:slottok   HASH holder -> token
-- KEYS[5] -> distq:{uid}:epoch     STRING pause epoch
-- ARGV[1] -> holder   ARGV[2] -> token ("" keeps the one there)
-- Returns {in use after the call, pause epoch}.
-- Pins holder's slot: its score becomes PINNED, which no lease expiry removes. The
-- pin is taken whatever the limit (a remote job that may exist must be counted),
-- also when holder's lease lapsed meanwhile.
redis.call('ZADD', KEYS[1], int(PINNED), ARGV[1])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[4], ARGV[1], ARGV[2]) end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('PERSIST', KEYS[1])
local ext = tonumber(redis.call('GET', KEYS[2])) or 0
return {redis.call('ZCARD', KEYS[1]) + ext, tonumber(redis.call('GET', KEYS[5])) or 0}
