-- Library prepended (in Go) to every script of the package; touches no key of its own.
-- shared_margin(key, now, min, max, initial, prune, kmin)
--   key     -> distq:{uid}:margin:<action>, HASH process id -> "lo hi late n expiry"
--              (lo, hi, late, expiry in µs; n samples)
--   now     -> Redis server time, µs        min, max -> clamp bounds of the margin, µs
--   initial -> margin while the live entries hold fewer than 2 samples, and its
--              floor while they hold fewer than kmin (from kmin/2 on, unless a
--              99% bound on the spread is less), µs
--   prune   -> true to HDEL expired entries (only from scripts that may write)
-- Returns the margin in µs, over live entries with K = sum(n):
--   (max(hi) - min(lo)) * (K+1)/(K-1) + max(late), clamped to [min, max],
-- and the part of it left for the delay between a grant and its call's send
-- (the margin less the widened spread; at least min, at most the margin).
-- The spread is taken across processes, which covers processes whose baseline
-- delays differ; (K+1)/(K-1) widens the range of a small pooled sample, but
-- two or three samples can still fall close together by chance (two of 0-50 ms
-- are within 2 ms of each other 8% of the time): below kmin samples the
-- margin is never under initial.
local function shared_margin(key, now, min, max, initial, prune, kmin)
  local fields = redis.call('HGETALL', key)
  local lo, hi, late, k = nil, nil, 0, 0
  for i = 1, #fields, 2 do
    local l, h, lt, n, exp = string.match(fields[i + 1], '^(%d+) (%d+) (%d+) (%d+) (%d+)$')
    if l and tonumber(exp) > now then
      l, h, lt = tonumber(l), tonumber(h), tonumber(lt)
      if lo == nil or l < lo then lo = l end
      if hi == nil or h > hi then hi = h end
      if lt > late then late = lt end
      k = k + tonumber(n)
    elseif prune then
      redis.call('HDEL', key, fields[i])
    end
  end
  local m, spread = initial, nil
  if k >= 2 then
    spread = math.ceil((hi - lo) * (k + 1) / (k - 1))
    m = spread + late
  end
  if k < kmin and m < initial then
    -- Below kmin samples the margin is at least initial; from kmin/2 samples
    -- on, at least the spread widened to a 99% bound for a uniform spread
    -- (x(K+1)/(K-1)(1+6/K): x1.96 at 10, x1.44 at 20) if that is less, so
    -- that a spread measured small (loopback) is used after 10 calls.
    local floor = initial
    if k >= kmin / 2 then
      local bound = math.ceil((hi - lo) * (k + 1) / (k - 1) * (1 + 6 / k)) + late
      if bound < floor then floor = bound end
    end
    if m < floor then m = floor end
  end
  if m < min then m = min end
  if m > max then m = max end
  -- Without a spread, half the margin goes to the send.
  local allow = m - (spread or math.floor(m / 2))
  if allow < min then allow = min end
  if allow > m then allow = m end
  return m, allow
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

-- A pinned slot's score: above every lease expiry (µs, year ~2255), so lease
-- expiry never drops it; only a release does.
local PINNED = 9000000000000000

-- score reads a sorted-set score as Redis answers it. Redis writes scores like
-- "9000000000000000"; other servers of the protocol (miniredis, in the dev stack)
-- write "9e+15", which the Lua of some of them cannot read with tonumber.
local function score(s)
  local n = tonumber(s)
  if n == nil and type(s) == 'string' then
    local m, e = string.match(s, '^([-+]?[%d%.]+)[eE]([-+]?%d+)$')
    if m then
      if string.sub(e, 1, 1) == '+' then e = string.sub(e, 2) end
      n = tonumber(m) * 10 ^ tonumber(e)
    end
  end
  return n
end
