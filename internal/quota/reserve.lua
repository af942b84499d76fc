-- KEYS[1] -> distq:{uid}:rate:<action>    LIST of grant times (µs), newest first
-- KEYS[2] -> distq:{uid}:margin:<action>  HASH process id -> "lo hi late n expiry"
-- KEYS[3] -> distq:{uid}:pause            STRING paused until (µs)
-- ARGV[1] -> N, grants per second (integer >= 1)
-- ARGV[2] -> max wait, µs (>= 0)
-- KEYS[4] -> distq:{uid}:epoch            STRING pause epoch
-- ARGV[3] -> min margin, µs   ARGV[4] -> max margin, µs   ARGV[5] -> initial margin, µs
-- ARGV[6] -> samples below which the margin is at least the initial one
-- Returns {granted (1|0), wait µs, grant time µs, margin µs, pause epoch, send allowance µs}.
-- The grant is max(now, paused until, newest grant, N-th newest grant + 1 s + margin):
-- grants never go backwards, so the N-th newest is the oldest of the last N, and at
-- most N grants fall in any window of 1 s + margin. Nothing is written when the
-- wait would exceed max wait.
local n = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local max_margin = tonumber(ARGV[4])
local now = now_us()
local margin, allow = shared_margin(KEYS[2], now, tonumber(ARGV[3]), max_margin, tonumber(ARGV[5]), true,
  tonumber(ARGV[6]))

local at = now
local paused = tonumber(redis.call('GET', KEYS[3]))
if paused and paused > at then at = paused end
local newest = tonumber(redis.call('LINDEX', KEYS[1], 0))
if newest and newest > at then at = newest end
local nth = tonumber(redis.call('LINDEX', KEYS[1], n - 1))
if nth and nth + 1000000 + margin > at then at = nth + 1000000 + margin end

local wait = at - now
if wait > max_wait then
  return {0, wait, at, margin, tonumber(redis.call('GET', KEYS[4])) or 0, allow}
end
redis.call('LPUSH', KEYS[1], int(at))
redis.call('LTRIM', KEYS[1], 0, n - 1)
-- Once the newest grant is older than 1 s + max margin, the list can bound nothing.
redis.call('PEXPIRE', KEYS[1], int(math.ceil((wait + 1000000 + max_margin) / 1000) + 1000))
return {1, wait, at, margin, tonumber(redis.call('GET', KEYS[4])) or 0, allow}
