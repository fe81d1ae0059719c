"""The gateway's shared state: cached key records, the rate limiter and usage counters.

One Lua script per request (`GATEWAY_SCRIPT`) reads the cached key record (found by the key's SHA-256, as
GitHub looks tokens up), checks revocation, expiry and the tenant's status, applies the limits and counts
usage, atomically: no INCR-then-EXPIRE gap, and no two requests can both take the last place.

Limits: the tier belongs to the tenant. Every request counts against the tenant's window (its tier's
limit, or an operator's override, over all its keys) and, when the key has a lower limit of its own,
against the key's window too; it is admitted only if both have room. Each window is a sliding window
of one-second buckets kept in one hash (at most 61 buckets and a running total, so O(1) memory and time
whatever the limit). A request is admitted only if the buckets of the last 61 seconds hold fewer than
the limit; any 60-second span lies inside such 61 buckets, so no client ever exceeds its limit over any
60 seconds (a fixed window allows 2x across its edge).

Embedded mode (no Redis) uses `MemoryGatewayStore`, the same algorithm in process.
Redis Cluster note: the script touches keys derived from the record (tenant, usage minute); on a
cluster they would need a common hash tag. One Redis or Sentinel, as deployed, is fine.
"""

import functools
import json
import os
import string
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

WINDOW_SECONDS = 60
PIGGYBACK_SECONDS = 0.5
IDLE_FLUSH_SECONDS = 5.0
RECORD_TTL_SECONDS = 86_400
USAGE_TTL_SECONDS = 2 * 86_400

REC = "apk:rec:"
LIMIT = "apk:rl:"  # a key's own window, by lookup id
TENANT_LIMIT = "apk:rl:t:"  # a tenant's window over all its keys, by tenant id (lookup ids have no ':')
TENANT = "apk:tenant:"
USAGE = "apk:usage:"
USAGE_MINUTES = "apk:usage:minutes"
LAST_USED = "apk:lastused"

# Decision codes returned by the script.
OK, MISS, INVALID, REVOKED, EXPIRED, TENANT_MISS, SUSPENDED, RATE_LIMITED = range(8)
# A cached record's `rev` after its key was removed from the database (a restore, a deleted tenant): the key
# is unknown, and a fill (which writes only where nothing is) cannot bring the old record back meanwhile.
REMOVED_FLAG = "gone"
# The policies of the RateLimit headers.
TENANT_POLICY, KEY_POLICY = "tenant", "key"

# The windows a request must fit in, each a sliding window of one-second buckets kept in one hash (fields
# = seconds, a running total 'n' and 'o', the oldest second still counted): the tenant's over all its keys,
# then the key's own when it is lower. More windows (a burst window, a monthly quota) are more rows of
# `windows`: a request is admitted only if every window has room, and then counted in every one.
_GATEWAY_SCRIPT = string.Template("""
local now = redis.call('TIME')
local now_s = tonumber(now[1])
local now_ms = now_s * 1000 + math.floor(tonumber(now[2]) / 1000)
local minute = now_s - (now_s % 60)

-- Outcomes (status class, latency) of earlier requests, carried here so they cost no round trip.
if ARGV[2] ~= '' then
  for _, o in ipairs(cjson.decode(ARGV[2])) do
    local ukey = '${USAGE}' .. o[1]
    local k = o[2]
    if o[3] > 0 then redis.call('HINCRBY', ukey, k .. ':c4', o[3]) end
    if o[4] > 0 then redis.call('HINCRBY', ukey, k .. ':c5', o[4]) end
    redis.call('HINCRBY', ukey, k .. ':ls', o[5])
    local max = tonumber(redis.call('HGET', ukey, k .. ':lm') or '0')
    if o[6] > max then redis.call('HSET', ukey, k .. ':lm', o[6]) end
    redis.call('EXPIRE', ukey, ${USAGE_TTL})
    redis.call('ZADD', KEYS[4], o[1], o[1])
  end
end

if ARGV[1] == '' then return {0} end
-- The record is found by the SHA-256 of the presented key: nothing secret is compared here, and
-- a wrong key simply finds no record.
local rec = redis.call('HMGET', KEYS[1], 'h', 'id', 't', 'sc', 'exp', 'lim', 'rev')
if not rec[2] then return {${MISS}} end
if rec[7] == '${REMOVED_FLAG}' then return {${INVALID}} end
if rec[7] == '1' then return {${REVOKED}, rec[2]} end
if rec[5] ~= '0' and now_ms >= tonumber(rec[5]) then return {${EXPIRED}, rec[2]} end

local tenant = redis.call('HMGET', '${TENANT}' .. rec[3], 's', 'lim', 'tier')
if not tenant[1] then return {${TENANT_MISS}, rec[2], rec[3]} end
if tenant[1] ~= 'active' then return {${SUSPENDED}, rec[2], rec[3]} end

-- {hash, limit, policy name}: the tenant's limit covers all its keys; a key's own can only lower it.
local tenant_limit = tonumber(tenant[2])
local key_limit = tenant_limit
local windows = {{'${TENANT_LIMIT}' .. rec[3], tenant_limit, 'tenant'}}
if rec[6] ~= '' and tonumber(rec[6]) < tenant_limit then
  key_limit = tonumber(rec[6])
  windows[#windows + 1] = {KEYS[2], key_limit, 'key'}
end

-- Drops the buckets older than 60 s; returns the requests still counted and the oldest counted second.
-- Expiring walks each second once in its life, so a request costs O(1) per window.
local function window_read(key)
  local state = redis.call('HMGET', key, 'n', 'o')
  local used = tonumber(state[1] or '0')
  local oldest = tonumber(state[2] or now_s)
  local first_kept = now_s - 60
  if oldest < first_kept then
    if first_kept - oldest > 61 then
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

local ukey = '${USAGE}' .. minute
local new_minute = redis.call('HINCRBY', ukey, rec[2] .. ':r', 1) == 1
if new_minute then
  redis.call('EXPIRE', ukey, ${USAGE_TTL})
  redis.call('ZADD', KEYS[4], minute, minute)
end
redis.call('HSET', KEYS[3], rec[2], now_s)

if refused then
  redis.call('HINCRBY', ukey, rec[2] .. ':l', 1)
  return {${RATE_LIMITED}, rec[2], rec[3], rec[4], tenant[3], refused[2], 0, refused[5] + 61 - now_s,
          refused[3], tenant_limit, key_limit}
end
for _, w in ipairs(windows) do
  redis.call('HINCRBY', w[1], now_s, 1)
  redis.call('HSET', w[1], 'n', w[4] + 1, 'o', w[5])
  redis.call('EXPIRE', w[1], 62)
end
return {${OK}, rec[2], rec[3], rec[4], tenant[3], closest[2], closest[6] - 1, closest[5] + 61 - now_s,
        closest[3], tenant_limit, key_limit}
""")

GATEWAY_SCRIPT = _GATEWAY_SCRIPT.substitute(
    USAGE=USAGE, TENANT=TENANT, TENANT_LIMIT=TENANT_LIMIT, USAGE_TTL=USAGE_TTL_SECONDS, REMOVED_FLAG=REMOVED_FLAG,
    OK=OK, MISS=MISS, INVALID=INVALID, REVOKED=REVOKED, EXPIRED=EXPIRED, TENANT_MISS=TENANT_MISS,
    SUSPENDED=SUSPENDED, RATE_LIMITED=RATE_LIMITED,
)  # fmt: skip

# Fill only when absent: a concurrent revocation or suspension (written unconditionally) always wins
# over a fill that read the database before that change committed.
FILL_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""

PUT_SCRIPT = """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""

# Forget last-used stamps the roll-up wrote, unless a newer request stamped them meanwhile.
FORGET_LAST_USED_SCRIPT = """
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then redis.call('HDEL', KEYS[1], ARGV[i]) end
end
return 1
"""


class Decision(NamedTuple):  # a tuple: built once per request, cheaply
    code: int
    key_id: str = ""
    tenant_id: str = ""
    scopes: tuple[str, ...] = ()
    tier: str = ""
    # The policy closest to its limit (the one that refused, when refused): its limit, what is left of
    # it and when it frees up; the RateLimit headers report it.
    limit: int = 0
    remaining: int = 0
    reset_seconds: int = 0
    policy: str = TENANT_POLICY
    tenant_limit: int = 0
    key_limit: int = 0  # the key's effective limit: its own when lower than the tenant's, else the tenant's

    @classmethod
    def from_reply(cls, reply: list) -> "Decision":
        code = int(reply[0])
        if len(reply) < 11:
            return cls(code, *(item.decode() if isinstance(item, bytes) else str(item) for item in reply[1:3]))
        key_id, tenant_id, scopes, tier = (item.decode() for item in reply[1:5])
        return cls(
            code, key_id, tenant_id, tuple(scopes.split()), tier, int(reply[5]), int(reply[6]), int(reply[7]),
            reply[8].decode(), int(reply[9]), int(reply[10]),
        )  # fmt: skip


def record_fields(api_key) -> dict:
    """What the gateway caches of a key: never the key itself, only its hash."""
    expires_ms = int(api_key.expires_at.timestamp() * 1000) if api_key.expires_at else 0
    return {
        "h": api_key.secret_hash,
        "id": str(api_key.pk),
        "t": str(api_key.tenant_id),
        "sc": " ".join(api_key.scopes),
        "exp": str(expires_ms),
        "lim": str(api_key.rate_limit_per_minute or ""),
        "rev": "1" if api_key.revoked_at else "0",
    }


def removed_record_fields(*, key_id: str, tenant_id: str, secret_hash: str) -> dict:
    """The record of a key that no longer exists: refused as unknown until the record expires."""
    return {"h": secret_hash, "id": key_id, "t": tenant_id, "sc": "", "exp": "0", "lim": "", "rev": REMOVED_FLAG}


def tenant_fields(tenant) -> dict:
    """The tenant's status and its limit over all its keys (the tier's, or an operator's override)."""
    return {"s": tenant.status, "lim": str(tenant.requests_per_minute), "tier": tenant.tier}


class OutcomeBuffer:
    """Status classes and latencies of finished requests, waiting to ride along with a later script call.

    Batched for up to `PIGGYBACK_SECONDS` so the script decodes them twice a second, not per request.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._pending: dict[tuple[int, str], list[int]] = {}
        self._since = 0.0

    def add(self, *, key_id: str, status_code: int, latency_ms: int) -> None:
        minute = int(time.time()) // 60 * 60
        with self._lock:
            if not self._pending:
                self._since = time.monotonic()
            entry = self._pending.setdefault((minute, key_id), [0, 0, 0, 0])
            entry[0] += 400 <= status_code < 500
            entry[1] += status_code >= 500
            entry[2] += latency_ms
            entry[3] = max(entry[3], latency_ms)

    def take(self, *, older_than: float = 0.0) -> list:
        """The pending outcomes (all, or none unless the oldest waited `older_than` seconds)."""
        with self._lock:
            if not self._pending or time.monotonic() - self._since < older_than:
                return []
            pending, self._pending = self._pending, {}
        return [[minute, key_id, *values] for (minute, key_id), values in pending.items()]

    def put_back(self, outcomes: list) -> None:
        for minute, key_id, c4, c5, latency_sum, latency_max in outcomes:
            with self._lock:
                entry = self._pending.setdefault((minute, key_id), [0, 0, 0, 0])
                entry[0] += c4
                entry[1] += c5
                entry[2] += latency_sum
                entry[3] = max(entry[3], latency_max)

    def older_than(self, seconds: float) -> bool:
        with self._lock:
            return bool(self._pending) and time.monotonic() - self._since > seconds


def _pack(*parts) -> bytes:
    """One Redis command in RESP (arguments: bytes or str)."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        if isinstance(part, str):
            part = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


class RedisGatewayStore:
    def __init__(self, client):
        self.client = client
        self._gateway = client.register_script(GATEWAY_SCRIPT)
        self._fill = client.register_script(FILL_SCRIPT)
        self._put = client.register_script(PUT_SCRIPT)
        self._forget_last_used = client.register_script(FORGET_LAST_USED_SCRIPT)
        self._gateway_sha = self._gateway.sha.encode()
        self._local = threading.local()

    def _script_input(self, lookup_id: str, secret_hash: str, outcomes: list) -> tuple[list, list]:
        keys = [REC + secret_hash, LIMIT + lookup_id, LAST_USED, USAGE_MINUTES]
        return keys, [secret_hash, json.dumps(outcomes) if outcomes else ""]

    def evaluate(self, *, lookup_id: str, secret_hash: str, outcomes: list) -> Decision:
        keys, args = self._script_input(lookup_id, secret_hash, outcomes)
        return Decision.from_reply(self._gateway(keys=keys, args=args))

    def send_evaluate(self, *, lookup_id: str, secret_hash: str, outcomes: list) -> Callable[[], Decision]:
        """Send the script call now; the returned function reads its reply (call it exactly once).

        Sent on this thread's own connection (no pool checkout, no command packer on the hot path), so
        nothing else reads the reply in between. Errors fall back to the pooled client's usual path.
        """
        keys, args = self._script_input(lookup_id, secret_hash, outcomes)
        # The pooled client's usual path: it reconnects, loads the script and retries under its own policy.
        pooled = functools.partial(self.evaluate, lookup_id=lookup_id, secret_hash=secret_hash, outcomes=outcomes)
        connection = self._own_connection()
        try:
            connection.send_packed_command([_pack(b"EVALSHA", self._gateway_sha, b"4", *keys, *args)])
        except BaseException:
            connection.disconnect()
            return pooled  # not sent (e.g. Redis closed an idle connection)

        def receive() -> Decision:
            try:
                reply = connection.read_response()
            except NoScriptError:  # Redis restarted or flushed its scripts; nothing ran
                return pooled()
            except RedisConnectionError:  # typically Redis closed this idle connection (a restart)
                connection.disconnect()
                return pooled()
            except BaseException:
                connection.disconnect()  # the reply may still be on its way: never reuse this stream
                raise
            return Decision.from_reply(reply)

        return receive

    def _own_connection(self):
        local = self._local
        if getattr(local, "pid", None) != os.getpid():  # new thread, or a forked worker: never share a socket
            pool = self.client.connection_pool
            local.connection, local.pid = pool.connection_class(**pool.connection_kwargs), os.getpid()
        return local.connection

    def flush_outcomes(self, outcomes: list) -> None:
        self._gateway(keys=[REC, LIMIT, LAST_USED, USAGE_MINUTES], args=["", json.dumps(outcomes)])

    def _hash_args(self, ttl: int, fields: dict) -> list:
        return [ttl, *[item for pair in fields.items() for item in pair]]

    def fill_record(self, lookup_id: str, fields: dict) -> None:
        self._fill(keys=[REC + fields["h"]], args=self._hash_args(RECORD_TTL_SECONDS, fields))

    def put_record(self, lookup_id: str, fields: dict) -> None:
        self._put(keys=[REC + fields["h"]], args=self._hash_args(RECORD_TTL_SECONDS, fields))

    def fill_tenant(self, tenant_id: str, fields: dict) -> None:
        self._fill(keys=[TENANT + tenant_id], args=self._hash_args(RECORD_TTL_SECONDS, fields))

    def put_tenant(self, tenant_id: str, fields: dict) -> None:
        self._put(keys=[TENANT + tenant_id], args=self._hash_args(RECORD_TTL_SECONDS, fields))

    def usage_minutes(self) -> list[int]:
        return [int(float(member)) for member in self.client.zrange(USAGE_MINUTES, 0, -1)]

    def usage_read(self, minute: int) -> dict[str, dict[str, int]]:
        usage: dict[str, dict[str, int]] = {}
        for field, value in self.client.hgetall(f"{USAGE}{minute}").items():
            key_id, metric = field.decode().rsplit(":", 1)
            usage.setdefault(key_id, {})[metric] = int(value)
        return usage

    def usage_forget(self, minutes: list[int]) -> None:
        if minutes:
            self.client.zrem(USAGE_MINUTES, *minutes)

    def last_used_read(self) -> dict[str, int]:
        return {field.decode(): int(value) for field, value in self.client.hgetall(LAST_USED).items()}

    def last_used_forget(self, stamps: dict[str, int]) -> None:
        if stamps:
            self._forget_last_used(keys=[LAST_USED], args=[item for pair in stamps.items() for item in pair])

    def reset_limit(self, lookup_id: str, tenant_id: str | None = None) -> None:
        """Empty a key's window (and its tenant's, when named)."""
        self.client.delete(LIMIT + lookup_id, *([TENANT_LIMIT + tenant_id] if tenant_id else []))


class MemoryGatewayStore:
    """The same decisions in one process, for embedded mode (local-memory cache, no Redis)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.records: dict[str, dict] = {}
        self.tenants: dict[str, dict] = {}
        self.buckets: dict[str, dict[int, int]] = {}
        self.usage: dict[int, dict[str, dict[str, int]]] = {}
        self.last_used: dict[str, int] = {}

    def _count(self, minute: int, key_id: str, metric: str, amount: int, *, maximum: bool = False) -> None:
        metrics = self.usage.setdefault(minute, {}).setdefault(key_id, {})
        metrics[metric] = max(metrics.get(metric, 0), amount) if maximum else metrics.get(metric, 0) + amount

    def evaluate(self, *, lookup_id: str, secret_hash: str, outcomes: list) -> Decision:
        from .keyformat import hashes_match

        now = time.time()
        now_s = int(now)
        with self._lock:
            self._apply(outcomes)
            rec = self.records.get(lookup_id)
            if rec is None:
                return Decision(MISS)
            if not hashes_match(rec["h"], secret_hash) or rec["rev"] == REMOVED_FLAG:
                return Decision(INVALID)
            if rec["rev"] == "1":
                return Decision(REVOKED, rec["id"])
            if rec["exp"] != "0" and now * 1000 >= int(rec["exp"]):
                return Decision(EXPIRED, rec["id"])
            tenant = self.tenants.get(rec["t"])
            if tenant is None:
                return Decision(TENANT_MISS, rec["id"], rec["t"])
            if tenant["s"] != "active":
                return Decision(SUSPENDED, rec["id"], rec["t"])
            tenant_limit = key_limit = int(tenant["lim"])
            # (buckets, limit, policy): the tenant's window over all its keys, the key's own when lower.
            windows = [(self.buckets.setdefault(TENANT_LIMIT + rec["t"], {}), tenant_limit, TENANT_POLICY)]
            if rec["lim"] and int(rec["lim"]) < tenant_limit:
                key_limit = int(rec["lim"])
                windows.append((self.buckets.setdefault(lookup_id, {}), key_limit, KEY_POLICY))
            states = []  # (room left before this request, reset seconds, limit, policy, buckets)
            for buckets, limit, policy in windows:
                for second in [second for second in buckets if second < now_s - WINDOW_SECONDS]:
                    del buckets[second]
                reset = (min(buckets) if buckets else now_s) + WINDOW_SECONDS + 1 - now_s
                states.append((limit - sum(buckets.values()), reset, limit, policy, buckets))
            minute = now_s // 60 * 60
            self._count(minute, rec["id"], "r", 1)
            self.last_used[rec["id"]] = now_s
            common = {"key_id": rec["id"], "tenant_id": rec["t"], "scopes": tuple(rec["sc"].split())}
            common |= {"tier": tenant["tier"], "tenant_limit": tenant_limit, "key_limit": key_limit}
            refused = next((state for state in states if state[0] <= 0), None)
            if refused is not None:
                self._count(minute, rec["id"], "l", 1)
                _, reset, limit, policy, _ = refused
                return Decision(RATE_LIMITED, limit=limit, remaining=0, reset_seconds=reset, policy=policy, **common)
            for *_, buckets in states:
                buckets[now_s] = buckets.get(now_s, 0) + 1
            room, reset, limit, policy, _ = min(states, key=lambda state: state[0])  # the first of equals
            return Decision(OK, limit=limit, remaining=room - 1, reset_seconds=reset, policy=policy, **common)

    def send_evaluate(self, *, lookup_id: str, secret_hash: str, outcomes: list) -> Callable[[], Decision]:
        decision = self.evaluate(lookup_id=lookup_id, secret_hash=secret_hash, outcomes=outcomes)
        return lambda: decision

    def _apply(self, outcomes: list) -> None:
        for minute, key_id, c4, c5, latency_sum, latency_max in outcomes:
            self._count(minute, key_id, "c4", c4)
            self._count(minute, key_id, "c5", c5)
            self._count(minute, key_id, "ls", latency_sum)
            self._count(minute, key_id, "lm", latency_max, maximum=True)

    def flush_outcomes(self, outcomes: list) -> None:
        with self._lock:
            self._apply(outcomes)

    def fill_record(self, lookup_id: str, fields: dict) -> None:
        with self._lock:
            self.records.setdefault(lookup_id, dict(fields))

    def put_record(self, lookup_id: str, fields: dict) -> None:
        with self._lock:
            self.records[lookup_id] = dict(fields)

    def fill_tenant(self, tenant_id: str, fields: dict) -> None:
        with self._lock:
            self.tenants.setdefault(tenant_id, dict(fields))

    def put_tenant(self, tenant_id: str, fields: dict) -> None:
        with self._lock:
            self.tenants[tenant_id] = dict(fields)

    def usage_minutes(self) -> list[int]:
        with self._lock:
            return sorted(self.usage)

    def usage_read(self, minute: int) -> dict[str, dict[str, int]]:
        with self._lock:
            return {key_id: dict(metrics) for key_id, metrics in self.usage.get(minute, {}).items()}

    def usage_forget(self, minutes: list[int]) -> None:
        with self._lock:
            for minute in minutes:
                self.usage.pop(minute, None)

    def last_used_read(self) -> dict[str, int]:
        with self._lock:
            return dict(self.last_used)

    def last_used_forget(self, stamps: dict[str, int]) -> None:
        with self._lock:
            for key_id, stamp in stamps.items():
                if self.last_used.get(key_id) == stamp:
                    del self.last_used[key_id]

    def reset_limit(self, lookup_id: str, tenant_id: str | None = None) -> None:
        with self._lock:
            self.buckets.pop(lookup_id, None)
            if tenant_id:
                self.buckets.pop(TENANT_LIMIT + tenant_id, None)


_store = None
_store_lock = threading.Lock()
outcomes = OutcomeBuffer()


def gateway_store():
    """The store for this process: Redis when REDIS_URL is set, else in memory (apikeys/embedded_store.py)."""
    global _store
    if _store is None:
        with _store_lock:
            if _store is None:
                if settings.REDIS_URL:
                    from django_redis import get_redis_connection

                    _store = RedisGatewayStore(get_redis_connection("default"))
                else:
                    from .embedded_store import EmbeddedGatewayStore

                    _store = EmbeddedGatewayStore()
    return _store


def flush_pending_outcomes() -> None:
    """Send this process's pending outcomes now (an idle process, or shutdown); kept on failure."""
    pending = outcomes.take()
    if not pending:
        return
    try:
        gateway_store().flush_outcomes(pending)
    except Exception:
        outcomes.put_back(pending)
