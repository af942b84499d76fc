-- KEYS[1] -> distq:{uid}:slots    ZSET holder -> lease expiry (µs)
-- KEYS[2] -> distq:{uid}:waiters  ZSET id -> first-seen order (µs)
-- ARGV[1] -> holder
-- Returns the oldest waiter, removed from the waiters, or false when none waits.
-- The pop happens whether or not holder still held a slot: the caller wakes the
-- waiter to try AcquireSlot, and a waiter that fails adds itself again.
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local popped = redis.call('ZPOPMIN', KEYS[2], 1)
return popped[1] or false
