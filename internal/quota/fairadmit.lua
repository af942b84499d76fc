-- ARGV[1] -> K, the most admissions at once   ARGV[2] -> admission ttl, µs
-- ARGV[3] -> n, then n pairs "team" "weight" (a team not named weighs 1)
-- then the paused teams, to the end of ARGV.
-- Returns the members admitted, in admission order.
-- Expired admissions (a run that never came) go back to the queue first, in their
-- place. Then, while fewer than K are admitted: the unpaused active team with the
-- lowest pass (raised to the virtual time: a team resumed after a pause banks no
-- credit) gives its oldest item; its pass grows by 10^6 / weight. A team found
-- empty leaves the active set, its pass kept for its return.
local now = now_us()
local expired = redis.call('ZRANGE', KEYS[5], '-inf', int(now), 'BYSCORE')
for _, m in ipairs(expired) do
  redis.call('ZREM', KEYS[5], m)
  redis.call('ZADD', KEYS[1], 0, m)
  fair_activate(fair_team(m))
end
local k = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local nw = tonumber(ARGV[3])
local weight = {}
for i = 0, nw - 1 do weight[ARGV[4 + 2 * i]] = tonumber(ARGV[5 + 2 * i]) end
local paused = {}
for i = 4 + 2 * nw, #ARGV do paused[ARGV[i]] = true end
local out = {}
local n = redis.call('ZCARD', KEYS[5])
local v = tonumber(redis.call('GET', KEYS[4])) or 0
local moved = false
while n < k do
  local teams = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
  local pick, pickp = nil, nil
  for i = 1, #teams, 2 do
    local t = teams[i]
    if not paused[t] then
      local p = score(teams[i + 1])
      if p < v then p = v end
      if pick == nil or p < pickp then pick, pickp = t, p end
    end
  end
  if pick == nil then break end
  local first = redis.call('ZRANGE', KEYS[1], '[' .. pick .. '\0', '(' .. pick .. '\1', 'BYLEX', 'LIMIT', 0, 1)
  if #first == 0 then
    redis.call('ZREM', KEYS[2], pick)
    redis.call('HSET', KEYS[3], pick, fair_num(pickp))
  else
    local m = first[1]
    redis.call('ZREM', KEYS[1], m)
    redis.call('ZADD', KEYS[5], int(now + ttl), m)
    n = n + 1
    v = pickp
    moved = true
    local w = weight[pick] or 1
    if w < 1 then w = 1 end
    redis.call('ZADD', KEYS[2], fair_num(pickp + 1000000 / w), pick)
    out[#out + 1] = m
  end
end
if moved then redis.call('SET', KEYS[4], fair_num(v)) end
return out
