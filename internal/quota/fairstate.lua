-- Returns {team, queued, pass, ...} for every active team, then the admitted members:
-- {{team, queued, pass, ...}, {member, ...}}.
local teams = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
local out = {}
for i = 1, #teams, 2 do
  local t = teams[i]
  out[#out + 1] = t
  out[#out + 1] = redis.call('ZLEXCOUNT', KEYS[1], '[' .. t .. '\0', '(' .. t .. '\1')
  out[#out + 1] = teams[i + 1]
end
return {out, redis.call('ZRANGE', KEYS[5], 0, -1)}
