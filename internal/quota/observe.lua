-- KEYS[1] -> distq:{uid}:margin:<action>  HASH process id -> "lo hi late n expiry"
-- ARGV[1] -> process id   ARGV[2] -> lo, µs   ARGV[3] -> hi, µs   ARGV[4] -> late, µs
-- ARGV[5] -> n, samples   ARGV[6] -> entry ttl, µs
-- Returns 1. Stores this process's estimate until now + ttl, prunes expired entries,
-- and keeps the key until its last entry expires (never sooner: processes may
-- use different ttls).
local now = now_us()
redis.call('HSET', KEYS[1], ARGV[1],
  ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. ARGV[5] .. ' ' .. int(now + tonumber(ARGV[6])))
local fields = redis.call('HGETALL', KEYS[1])
local last = now
for i = 1, #fields, 2 do
  local exp = tonumber(string.match(fields[i + 1], ' (%d+)$'))
  if exp == nil or exp <= now then
    redis.call('HDEL', KEYS[1], fields[i])
  elseif exp > last then
    last = exp
  end
end
redis.call('PEXPIREAT', KEYS[1], int(math.ceil(last / 1000)))
return 1
