-- KEYS[1] -> distq:{uid}:pause  STRING paused until (µs)
-- KEYS[2] -> distq:{uid}:epoch  STRING pause epoch, one more per pause
-- ARGV[1] -> pause length, µs (> 0)
-- Returns the pause end in µs after the call: the later of the current end and now + length.
-- The key expires at the pause end, so a lapsed pause leaves nothing behind. Every
-- pause raises the epoch: grants taken before it must be taken again.
local now = now_us()
local want = now + tonumber(ARGV[1])
redis.call('INCR', KEYS[2])
local cur = tonumber(redis.call('GET', KEYS[1]))
if cur and cur >= want then return cur end
redis.call('SET', KEYS[1], int(want), 'PXAT', int(math.ceil(want / 1000)))
return want
