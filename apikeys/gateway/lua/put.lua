-- Replace a hash whole. KEYS[1]: the hash; ARGV: its TTL in seconds, then field, value, ...
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
