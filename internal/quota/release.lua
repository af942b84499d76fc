-- KEYS[1] -> distq:{uid}:slots    ZSET holder -> lease expiry (µs), or PINNED
-- KEYS[2] -> distq:{uid}:waiters  ZSET id -> first-seen order (µs)
-- KEYS[3] -> distq:{uid}:slottok  HASH holder -> token
-- ARGV[1] -> holder   ARGV[2] -> token ("" frees whatever run holds it)
-- Returns the oldest waiter, removed from the waiters, or false when none waits or
-- nothing was freed. With a token, the slot is freed only when that token holds it
-- (a stale run never frees the slot of the live run of the same holder). The pop
-- happens whether or not holder still held a slot: the caller wakes the waiter to
-- try AcquireSlot, and a waiter that fails adds itself again.
if ARGV[2] ~= '' then
  local tok = redis.call('HGET', KEYS[3], ARGV[1])
  if tok and tok ~= ARGV[2] then return false end
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local popped = redis.call('ZPOPMIN', KEYS[2], 1)
return popped[1] or false
