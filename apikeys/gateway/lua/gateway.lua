-- The gateway's decision for one request: the key record, the tenant's status, every window of the
-- tenant's usage plan (burst, minute, the key's own minute, the monthly quota) and the usage counters, in
-- one atomic call (apikeys/gateway/redis_store.py).
-- KEYS: the key record, the key's own window, the last-used stamps, the usage minutes to roll up.
-- ARGV: the key's hash ('' for a call that only carries outcomes), the outcomes (JSON or ''), the
-- request's cost, the month ('YYYYMM', UTC) and the epoch second it ends.
-- The constants (key prefixes, windows, TTLs, decision codes, policy names) are Lua locals of the names of
-- apikeys/gateway/base.py SCRIPT_CONSTANTS, declared ahead of this source when it is loaded: the script
-- holds no literal of its own.
-- Every redis.call costs the server a microsecond or two while the request waits for the reply, so the
-- steady state makes as few as it can: a window's TTL is renewed once a second, not once a request, and the
-- work of expiring buckets or of computing a refusal's wait is done only when there is some.

local now = redis.call('TIME')
local now_s = tonumber(now[1])
local now_ms = now_s * 1000 + math.floor(tonumber(now[2]) / 1000)
local minute = now_s - (now_s % USAGE_BUCKET_SECONDS)

-- Outcomes (status class, latency) of earlier requests, carried here so they cost no round trip.
if ARGV[2] ~= '' then
  for _, o in ipairs(cjson.decode(ARGV[2])) do
    local usage_key = USAGE_MINUTE_PREFIX .. o[1]
    local k = o[2]
    if o[3] > 0 then redis.call('HINCRBY', usage_key, k .. ':c4', o[3]) end
    if o[4] > 0 then redis.call('HINCRBY', usage_key, k .. ':c5', o[4]) end
    redis.call('HINCRBY', usage_key, k .. ':ls', o[5])
    local max = tonumber(redis.call('HGET', usage_key, k .. ':lm') or '0')
    if o[6] > max then redis.call('HSET', usage_key, k .. ':lm', o[6]) end
    redis.call('EXPIRE', usage_key, USAGE_TTL_SECONDS)
    redis.call('ZADD', KEYS[4], o[1], o[1])
  end
end

if ARGV[1] == '' then return {0} end
local cost = tonumber(ARGV[3])
local month, month_end = ARGV[4], tonumber(ARGV[5])
-- The record is found by the SHA-256 of the presented key: nothing secret is compared here, and
-- a wrong key simply finds no record.
local rec = redis.call('HMGET', KEYS[1], 'h', 'id', 't', 'sc', 'exp', 'lim', 'rev')
if not rec[2] then return {MISS} end
if rec[7] == REMOVED_FLAG then return {INVALID} end
if rec[7] == '1' then return {REVOKED, rec[2]} end
if rec[5] ~= '0' and now_ms >= tonumber(rec[5]) then return {EXPIRED, rec[2]} end

-- The tenant's status and plan: each limit '' when the plan has none; 'qm'/'qs' the month and units the
-- database had counted when the record was written, the seed of a month counter Redis lost.
local tenant = redis.call('HMGET', TENANT_RECORD_PREFIX .. rec[3], 's', 'tier', 'b', 'lim', 'q', 'qm', 'qs')
if not tenant[1] then return {TENANT_MISS, rec[2], rec[3]} end
if tenant[1] ~= 'active' then return {SUSPENDED, rec[2], rec[3]} end
local burst, minute_limit, quota = tonumber(tenant[3]), tonumber(tenant[4]), tonumber(tenant[5])

-- A per-minute window: one-second buckets in a hash, with the units they hold ('n') and the oldest
-- non-empty second ('o'). Buckets are removed only here, when they leave the window, so 'o' moves only then:
-- expiring walks each second once in its life and a request costs O(1) per window. Returns the units still
-- counted, the seconds until the oldest counted second leaves the window, and that second.
local function sliding_read(key)
  local state = redis.call('HMGET', key, 'n', 'o')
  local used = tonumber(state[1] or '0')
  local oldest = tonumber(state[2] or now_s)
  local first_kept = now_s - WINDOW_SECONDS
  if oldest < first_kept then
    if first_kept - oldest > WINDOW_SECONDS + 1 then
      redis.call('DEL', key)
      used = 0
    else
      for second = oldest, first_kept - 1 do
        local count = redis.call('HGET', key, second)
        if count then
          used = used - tonumber(count)
          redis.call('HDEL', key, second)
        end
      end
      oldest = first_kept
      while used > 0 and oldest < now_s and not redis.call('HGET', key, oldest) do
        oldest = oldest + 1
      end
    end
  end
  if used == 0 then oldest = now_s end
  return used, oldest + WINDOW_SECONDS + 1 - now_s, oldest
end
local function sliding_count(w)
  -- A second's first units renew the TTL: the hash outlives its newest bucket by the whole window.
  if redis.call('HINCRBY', w.key, now_s, cost) == cost then redis.call('EXPIRE', w.key, WINDOW_SECONDS + 2) end
  redis.call('HSET', w.key, 'n', w.used + cost, 'o', w.oldest)
end
-- A refused request's wait: until enough of the oldest buckets have left the window for its cost to fit
-- (not only the oldest: a request of cost 10 may need several to go). One read, on a refusal only.
local function sliding_wait(w)
  local short = cost - w.room
  local seconds = {}
  for second = w.oldest, now_s do seconds[#seconds + 1] = second end
  local counts = redis.call('HMGET', w.key, unpack(seconds))
  local freed = 0
  for i = 1, #seconds do
    if counts[i] then
      freed = freed + tonumber(counts[i])
      if freed >= short then return seconds[i] + WINDOW_SECONDS + 1 - now_s end
    end
  end
  return w.reset  -- a cost above the limit itself never fits: the window's own reset
end

-- The burst window: the units of the current BURST_WINDOW_SECONDS slot (fields 's' = slot, 'n' = units). A
-- refused request waits for the next slot, which starts empty.
local function burst_read(key)
  local slot = now_s - (now_s % BURST_WINDOW_SECONDS)
  local state = redis.call('HMGET', key, 's', 'n')
  local used = 0
  if tonumber(state[1]) == slot then used = tonumber(state[2]) end
  return used, slot + BURST_WINDOW_SECONDS - now_s, slot
end
local function burst_count(w)
  redis.call('HSET', w.key, 's', w.oldest, 'n', w.used + cost)
  if w.used == 0 then redis.call('EXPIRE', w.key, BURST_WINDOW_SECONDS + 1) end  -- a new slot
end

-- The month's units: a counter per tenant and month, counted whether or not the plan has a quota (usage,
-- and a quota set later, start from the true figure), seeded from the database when Redis lost it (a
-- restart never hands a tenant a fresh month), kept until well after the month ends for the roll-up.
-- Read only when a quota is checked; without one it is counted blind and seeded when that created it.
local month_key = TENANT_MONTH_UNITS_PREFIX .. rec[3] .. ':' .. month
local month_seed = 0
if tenant[6] == month then month_seed = tonumber(tenant[7]) or 0 end
local month_used
if quota then
  month_used = redis.call('GET', month_key)
  if not month_used then
    month_used = month_seed
    redis.call('SET', month_key, month_used)
    redis.call('EXPIREAT', month_key, month_end + USAGE_TTL_SECONDS)
  end
  month_used = tonumber(month_used)
end

-- The windows of this request, in the order the headers list them. The tenant's windows cover all its
-- keys; a key's own minute limit can only lower the tenant's.
local windows = {}
if burst then
  windows[#windows + 1] = {key = TENANT_BURST_WINDOW_PREFIX .. rec[3], limit = burst, policy = BURST_POLICY,
                           read = burst_read, count = burst_count}
end
if minute_limit then
  windows[#windows + 1] = {key = TENANT_MINUTE_WINDOW_PREFIX .. rec[3], limit = minute_limit,
                           policy = MINUTE_POLICY, read = sliding_read, count = sliding_count, wait = sliding_wait}
end
local key_limit = tonumber(rec[6])
if key_limit and (not minute_limit or key_limit < minute_limit) then
  windows[#windows + 1] = {key = KEYS[2], limit = key_limit, policy = KEY_POLICY,
                           read = sliding_read, count = sliding_count, wait = sliding_wait}
else
  key_limit = nil
end
if quota then
  windows[#windows + 1] = {limit = quota, policy = MONTH_POLICY, used = month_used, reset = month_end - now_s}
end

-- Every window is read before any is counted: a request refused by one is counted in none.
local refused, closest
for _, w in ipairs(windows) do
  if w.read then w.used, w.reset, w.oldest = w.read(w.key) end
  w.room = w.limit - w.used  -- units left before this request
  if w.room < cost and not refused then refused = w end
  if not closest or w.room < closest.room then closest = w end
end

local usage_key = USAGE_MINUTE_PREFIX .. minute
if redis.call('HINCRBY', usage_key, rec[2] .. ':r', 1) == 1 then  -- the key's first request this minute
  redis.call('EXPIRE', usage_key, USAGE_TTL_SECONDS)
  redis.call('ZADD', KEYS[4], minute, minute)
end
redis.call('HSET', KEYS[3], rec[2], now_s)

local plan = {burst or 0, minute_limit or 0, key_limit or 0, quota or 0}
if refused then
  redis.call('HINCRBY', usage_key, rec[2] .. ':l', 1)
  local wait = refused.reset
  if refused.wait then wait = refused.wait(refused) end
  return {RATE_LIMITED, rec[2], rec[3], rec[4], tenant[2], refused.policy, refused.limit,
          math.max(refused.room, 0), wait, unpack(plan)}
end
for _, w in ipairs(windows) do
  if w.count then w.count(w) end
end
if quota then
  redis.call('INCRBY', month_key, cost)
elseif redis.call('INCRBY', month_key, cost) == cost then  -- created just now: seeded, and kept for the roll-up
  if month_seed > 0 then redis.call('INCRBY', month_key, month_seed) end
  redis.call('EXPIREAT', month_key, month_end + USAGE_TTL_SECONDS)
end
redis.call('HINCRBY', usage_key, rec[2] .. ':u', cost)
if not closest then
  return {OK, rec[2], rec[3], rec[4], tenant[2], '', 0, -1, 0, unpack(plan)}
end
return {OK, rec[2], rec[3], rec[4], tenant[2], closest.policy, closest.limit, closest.room - cost, closest.reset,
        unpack(plan)}
