-- Library prepended (in Go) to every fair-share script, after marginlib.lua.
-- Every fair script takes the same keys, all of one account (one hash slot):
--   KEYS[1] -> distq:{uid}:fair:queue   ZSET, every score 0: "team\0order\0id" in lex
--              order, so one ZRANGE BYLEX finds a team's oldest waiting item
--   KEYS[2] -> distq:{uid}:fair:active  ZSET team -> pass (teams with queued items)
--   KEYS[3] -> distq:{uid}:fair:pass    HASH team -> pass when it was last active
--   KEYS[4] -> distq:{uid}:fair:vt      STRING virtual time: the pass of the last admission
--   KEYS[5] -> distq:{uid}:fair:adm     ZSET member -> admission expiry, µs
-- A pass is a float; each admission of a team adds 10^6 / weight to its pass, and
-- the next admission goes to the eligible team with the lowest pass (stride
-- scheduling), so teams with backlogs are admitted in proportion to their weights.

-- fair_num renders a pass for redis.call without losing precision.
local function fair_num(x)
  return string.format('%.17g', x)
end

-- fair_team is the team part of a member.
local function fair_team(m)
  return string.sub(m, 1, string.find(m, '\0', 1, true) - 1)
end

-- fair_activate makes team active if it is not: its pass starts at the later of
-- its last pass and the virtual time, so a team neither banks credit while it
-- had nothing queued nor is penalized for what it was served before.
local function fair_activate(team)
  if redis.call('ZSCORE', KEYS[2], team) then return end
  local p = tonumber(redis.call('HGET', KEYS[3], team)) or 0
  local v = tonumber(redis.call('GET', KEYS[4])) or 0
  if v > p then p = v end
  redis.call('ZADD', KEYS[2], fair_num(p), team)
end
