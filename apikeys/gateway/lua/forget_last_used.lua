-- Forget last-used stamps the roll-up wrote, unless a newer request stamped them meanwhile.
-- KEYS[1]: the stamps hash; ARGV: key id, stamp, ...
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then redis.call('HDEL', KEYS[1], ARGV[i]) end
end
return 1
