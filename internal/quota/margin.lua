-- KEYS[1] -> distq:{uid}:margin:<action>  HASH process id -> "lo hi late n expiry"
-- ARGV[1] -> min margin, µs   ARGV[2] -> max margin, µs   ARGV[3] -> initial margin, µs
-- Returns the margin in µs the next reservation of that (uid, action) would use.
return shared_margin(KEYS[1], now_us(), tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), false)
