-- KEYS[1] -> distq:{uid}:margin:<action>  HASH process id -> "lo hi late n expiry"
-- ARGV[1] -> min margin, µs   ARGV[2] -> max margin, µs   ARGV[3] -> initial margin, µs
-- ARGV[4] -> samples below which the margin is at least the initial one
-- Returns the margin in µs the next reservation of that (uid, action) would use.
local m = shared_margin(KEYS[1], now_us(), tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), false,
  tonumber(ARGV[4]))
return m
