-- Library prepended (in Go) to every script of the package; touches no key of its own.
-- shared_margin(key, now, min, max, initial, prune)
--   key     -> distq:{uid}:margin:<action>, HASH process id -> "lo hi expiry" (all µs)
--   now     -> Redis server time, µs        min, max -> clamp bounds of the margin, µs
--   initial -> margin when no process has a live estimate, µs
--   prune   -> true to HDEL expired entries (only from scripts that may write)
-- Returns the margin in µs: max(hi) - min(lo) over live entries, clamped to [min, max].
-- Taking the spread across processes, not the largest per-process spread, covers
-- processes whose baseline delays differ (one far away, one near).
local function shared_margin(key, now, min, max, initial, prune)
  local fields = redis.call('HGETALL', key)
  local lo, hi
  for i = 1, #fields, 2 do
    local l, h, exp = string.match(fields[i + 1], '^(%-?%d+) (%-?%d+) (%d+)$')
    if l and tonumber(exp) > now then
      l, h = tonumber(l), tonumber(h)
      if lo == nil or l < lo then lo = l end
      if hi == nil or h > hi then hi = h end
    elseif prune then
      redis.call('HDEL', key, fields[i])
    end
  end
  local m = initial
  if lo ~= nil then m = hi - lo end
  if m < min then m = min end
  if m > max then m = max end
  return m
end

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- Redis turns Lua numbers into strings with %.14g, which loses µs precision;
-- every number sent to redis.call goes through int().
local function int(x)
  return string.format('%d', x)
end
