-- KEYS[1] -> distq:active:{uid}:<product>:<target>   (a claim)
-- KEYS[2] -> distq:d:<id>                             (the record it names)
-- ARGV[1] -> the id the caller read from KEYS[1]
-- Deletes the claim when it still names ARGV[1], is permanent (a claim with
-- a TTL belongs to an insert in flight) and its record does not exist.
-- Returns 1 when it deleted the claim, else 0.
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call("PTTL", KEYS[1]) ~= -1 then return 0 end
if redis.call("EXISTS", KEYS[2]) == 1 then return 0 end
return redis.call("DEL", KEYS[1])
