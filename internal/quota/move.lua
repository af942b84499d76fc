-- KEYS[1] -> distq:{uid}:rate:<action>    LIST of grant times (µs), newest first
-- KEYS[2] -> distq:{uid}:margin:<action>  HASH process id -> "lo hi late n expiry"
-- KEYS[3] -> distq:{uid}:pause            STRING paused until (µs)
-- KEYS[4] -> distq:{uid}:epoch            STRING pause epoch
-- ARGV[1] -> N, grants per second   ARGV[2] -> the grant to move, µs
-- ARGV[3] -> the pause epoch of that grant
-- ARGV[4] -> min margin, µs   ARGV[5] -> max margin, µs   ARGV[6] -> initial margin, µs
-- ARGV[7] -> samples below which the margin is at least the initial one
-- Returns {moved (1|0), grant time µs, margin µs, pause epoch, send allowance µs, wait µs}
-- (the wait is above 0 only for a grant that was not due yet: it stays where it was).
-- Moves a grant whose call has not left yet to now, when that keeps at most N
-- grants in any window of 1 s + margin: when the grant is still among the N
-- newest. A later grant was then reserved against an older one (the N-th newest
-- before it), never against this one, and every window that holds the moved
-- grant spans at least what it spanned before. Nothing moves across a pause
-- (the epoch changed, or one is in force) or when the grant is gone.
local n = tonumber(ARGV[1])
local old = tonumber(ARGV[2])
local now = now_us()
local margin, allow = shared_margin(KEYS[2], now, tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), false,
  tonumber(ARGV[7]))
local epoch = tonumber(redis.call('GET', KEYS[4])) or 0
local paused = tonumber(redis.call('GET', KEYS[3]))
if epoch ~= tonumber(ARGV[3]) or (paused and paused > now) then
  return {0, old, margin, epoch, allow, 0}
end
local list = redis.call('LRANGE', KEYS[1], 0, n - 1)
local grants, found = {}, false
for _, v in ipairs(list) do
  local g = tonumber(v)
  if not found and g == old then
    found = true
    if now > g then g = now end
  end
  grants[#grants + 1] = g
end
if not found then
  return {0, old, margin, epoch, allow, 0}
end
local at = now
if old > at then at = old end
table.sort(grants, function(a, b) return a > b end)
redis.call('DEL', KEYS[1])
for _, g in ipairs(grants) do
  redis.call('RPUSH', KEYS[1], int(g))
end
redis.call('PEXPIRE', KEYS[1], int(math.ceil((grants[1] - now + 1000000 + tonumber(ARGV[5])) / 1000) + 1000))
return {1, at, margin, epoch, allow, at - now}
