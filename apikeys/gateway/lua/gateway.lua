-- The gateway's decision for one request (see apikeys/gateway/redis_store.py for the call).
-- KEYS: the key record, the key's own window, the last-used stamps, the usage minutes to roll up.
-- ARGV: the key's hash ('' for a call that only carries outcomes), the outcomes (JSON or ''), then the
-- constants of apikeys/gateway/base.py in the order of SCRIPT_CONSTANTS there.
local TENANT, TENANT_LIMIT, USAGE, REMOVED_FLAG = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local USAGE_TTL, WINDOW, USAGE_BUCKET = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local OK, MISS, INVALID, REVOKED, EXPIRED = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12]),
  tonumber(ARGV[13]), tonumber(ARGV[14])
local TENANT_MISS, SUSPENDED, RATE_LIMITED = tonumber(ARGV[15]), tonumber(ARGV[16]), tonumber(ARGV[17])
local TENANT_POLICY, KEY_POLICY = ARGV[18], ARGV[19]

local now = redis.call('TIME')
local now_s = tonumber(now[1])
local now_ms = now_s * 1000 + math.floor(tonumber(now[2]) / 1000)
local minute = now_s - (now_s % USAGE_BUCKET)

-- Outcomes (status class, latency) of earlier requests, carried here so they cost no round trip.
if ARGV[2] ~= '' then
  for _, o in ipairs(cjson.decode(ARGV[2])) do
    local ukey = USAGE .. o[1]
    local k = o[2]
    if o[3] > 0 then redis.call('HINCRBY', ukey, k .. ':c4', o[3]) end
    if o[4] > 0 then redis.call('HINCRBY', ukey, k .. ':c5', o[4]) end
    redis.call('HINCRBY', ukey, k .. ':ls', o[5])
    local max = tonumber(redis.call('HGET', ukey, k .. ':lm') or '0')
    if o[6] > max then redis.call('HSET', ukey, k .. ':lm', o[6]) end
    redis.call('EXPIRE', ukey, USAGE_TTL)
    redis.call('ZADD', KEYS[4], o[1], o[1])
  end
end

if ARGV[1] == '' then return {0} end
-- The record is found by the SHA-256 of the presented key: nothing secret is compared here, and
-- a wrong key simply finds no record.
local rec = redis.call('HMGET', KEYS[1], 'h', 'id', 't', 'sc', 'exp', 'lim', 'rev')
if not rec[2] then return {MISS} end
if rec[7] == REMOVED_FLAG then return {INVALID} end
if rec[7] == '1' then return {REVOKED, rec[2]} end
if rec[5] ~= '0' and now_ms >= tonumber(rec[5]) then return {EXPIRED, rec[2]} end

local tenant = redis.call('HMGET', TENANT .. rec[3], 's', 'lim', 'tier')
if not tenant[1] then return {TENANT_MISS, rec[2], rec[3]} end
if tenant[1] ~= 'active' then return {SUSPENDED, rec[2], rec[3]} end

-- {hash, limit, policy name}: the tenant's limit covers all its keys; a key's own can only lower it.
local tenant_limit = tonumber(tenant[2])
local key_limit = tenant_limit
local windows = {{TENANT_LIMIT .. rec[3], tenant_limit, TENANT_POLICY}}
if rec[6] ~= '' and tonumber(rec[6]) < tenant_limit then
  key_limit = tonumber(rec[6])
  windows[#windows + 1] = {KEYS[2], key_limit, KEY_POLICY}
end

-- Drops the buckets older than the window; returns the requests still counted and the oldest counted
-- second. Expiring walks each second once in its life, so a request costs O(1) per window.
local function window_read(key)
  local state = redis.call('HMGET', key, 'n', 'o')
  local used = tonumber(state[1] or '0')
  local oldest = tonumber(state[2] or now_s)
  local first_kept = now_s - WINDOW
  if oldest < first_kept then
    if first_kept - oldest > WINDOW + 1 then
      redis.call('DEL', key)
      used = 0
      oldest = now_s
    else
      for second = oldest, first_kept - 1 do
        local count = redis.call('HGET', key, second)
        if count then
          used = used - tonumber(count)
          redis.call('HDEL', key, second)
        end
      end
      oldest = first_kept
    end
  end
  -- 'o' points at the oldest non-empty bucket, so the reset told to clients is exact.
  while used > 0 and oldest < now_s and not redis.call('HGET', key, oldest) do
    oldest = oldest + 1
  end
  if used == 0 then oldest = now_s end
  return used, oldest
end

-- Every window is read before any is counted: a request refused by one is counted in none.
local refused, closest
for _, w in ipairs(windows) do
  w[4], w[5] = window_read(w[1])
  w[6] = w[2] - w[4]  -- room left before this request
  if w[6] <= 0 and not refused then refused = w end
  if not closest or w[6] < closest[6] then closest = w end
end

local ukey = USAGE .. minute
local new_minute = redis.call('HINCRBY', ukey, rec[2] .. ':r', 1) == 1
if new_minute then
  redis.call('EXPIRE', ukey, USAGE_TTL)
  redis.call('ZADD', KEYS[4], minute, minute)
end
redis.call('HSET', KEYS[3], rec[2], now_s)

if refused then
  redis.call('HINCRBY', ukey, rec[2] .. ':l', 1)
  return {RATE_LIMITED, rec[2], rec[3], rec[4], tenant[3], refused[2], 0, refused[5] + WINDOW + 1 - now_s,
          refused[3], tenant_limit, key_limit}
end
for _, w in ipairs(windows) do
  redis.call('HINCRBY', w[1], now_s, 1)
  redis.call('HSET', w[1], 'n', w[4] + 1, 'o', w[5])
  redis.call('EXPIRE', w[1], WINDOW + 2)
end
return {OK, rec[2], rec[3], rec[4], tenant[3], closest[2], closest[6] - 1, closest[5] + WINDOW + 1 - now_s,
        closest[3], tenant_limit, key_limit}
