-- KEYS[1] -> distq:{uid}:slots     ZSET holder -> lease expiry (µs), or PINNED
-- KEYS[2] -> distq:{uid}:waiters   ZSET id -> first-seen order (µs)
-- KEYS[3] -> distq:{uid}:slottok   HASH holder -> token
-- KEYS[4] -> distq:{uid}:external  STRING remote jobs made outside distq
-- ARGV[1] -> holder   ARGV[2] -> token ("" frees whatever run holds it)
-- ARGV[3] -> limit (0: no hand-off)   ARGV[4] -> the hand-off's lease, µs
-- Returns {the oldest waiter, removed from the waiters, or false when none waits or
-- nothing was freed; 1 when the freed slot was handed to that waiter, else 0}.
-- With a token, the slot is freed only when that token holds it (a stale run never
-- frees the slot of the live run of the same holder). The pop happens whether or not
-- holder still held a slot. With a limit, the popped waiter gets a slot leased to it
-- in the same step, when leases + pins + external leave room: no other task can
-- take the freed slot between the release and the waiter's acquire (priority
-- waiters first, Q7), and the waiter's AcquireSlot finds it held (idempotent). A
-- waiter that does not come (canceled meanwhile) lets the lease lapse or is
-- released by its waker.
if ARGV[2] ~= '' then
  local tok = redis.call('HGET', KEYS[3], ARGV[1])
  if tok and tok ~= ARGV[2] then return {false, 0} end
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local popped = redis.call('ZPOPMIN', KEYS[2], 1)
local next = popped[1]
if not next then return {false, 0} end
local limit = tonumber(ARGV[3])
if limit > 0 then
  local now = now_us()
  local expired = redis.call('ZRANGE', KEYS[1], '-inf', int(now), 'BYSCORE')
  for _, h in ipairs(expired) do redis.call('HDEL', KEYS[3], h) end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(now))
  local ext = tonumber(redis.call('GET', KEYS[4])) or 0
  if redis.call('ZSCORE', KEYS[1], next) then return {next, 1} end
  if redis.call('ZCARD', KEYS[1]) + ext < limit then
    redis.call('ZADD', KEYS[1], int(now + tonumber(ARGV[4])), next)
    redis.call('HDEL', KEYS[3], next)
    local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
    redis.call('PEXPIREAT', KEYS[1], int(math.ceil(score(last[2]) / 1000)))
    return {next, 1}
  end
end
return {next, 0}
