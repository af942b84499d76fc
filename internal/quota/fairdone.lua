-- ARGV[1] -> member   ARGV[2] -> team   ARGV[3] -> "1" to put it back in the queue
-- Ends the member's admission and takes it out of the queue. With ARGV[3] "1" an
-- admitted member goes back to the queue in its place instead (a paused team's
-- item), its team active again. Returns 1 when the member was admitted, else 0.
local was = redis.call('ZREM', KEYS[5], ARGV[1])
if ARGV[3] == '1' then
  if was == 1 then
    redis.call('ZADD', KEYS[1], 0, ARGV[1])
    fair_activate(ARGV[2])
  end
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return was
