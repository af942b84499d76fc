-- KEYS[1] -> distq:{uid}:slots  ZSET holder -> lease expiry (µs)
-- Returns {holder, expiry µs, ...} for every unexpired lease, soonest expiry first.
return redis.call('ZRANGE', KEYS[1], '(' .. int(now_us()), '+inf', 'BYSCORE', 'WITHSCORES')
