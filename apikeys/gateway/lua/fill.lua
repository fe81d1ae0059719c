-- Fill only when absent: a concurrent revocation or suspension (written unconditionally) always wins
-- over a fill that read the database before that change committed.
-- KEYS[1]: the hash; ARGV: its TTL in seconds, then field, value, ...
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
