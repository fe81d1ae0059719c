"""The gateway store's interface, its constants and the decision it returns.

One Lua script per request (`lua/gateway.lua`) reads the cached key record (found by the key's SHA-256, as
GitHub looks tokens up), checks revocation, expiry and the tenant's status, applies the limits and counts
usage, atomically: no INCR-then-EXPIRE gap, and no two requests can both take the last place.

Limits: the tier belongs to the tenant, and with it a usage plan (tenants/plans.py): a burst window
(units in the current second), the per-minute window, and a monthly quota (calendar month, UTC), each
optional and over all the tenant's keys; a key's own per-minute limit can only be lower. A request of
cost c (a view's `gateway_cost`) is admitted only if every window has c units of room, and is then counted
c in every one (or in none). The per-minute windows are sliding windows of one-second buckets kept in one hash (at most WINDOW_SECONDS + 1 buckets and a running total, so O(1)
memory and time whatever the limit). A request is admitted only if the buckets of the last
WINDOW_SECONDS + 1 seconds hold fewer than the limit; any WINDOW_SECONDS span lies inside such buckets,
so no client ever exceeds its limit over any window (a fixed window allows 2x across its edge).

Two stores implement `GatewayStore`: `RedisGatewayStore` (redis_store.py) when REDIS_URL is set, and
`MemoryGatewayStore` (memory_store.py), the same algorithm in process, for embedded mode.
Redis Cluster note: the script touches keys derived from the record (tenant, usage minute); on a
cluster they would need a common hash tag. One Redis or Sentinel, as deployed, is fine.
"""

import abc
import datetime
import time
from collections.abc import Callable
from typing import NamedTuple

from django.conf import settings

from core.singletons import process_singleton

WINDOW_SECONDS = 60  # the per-minute windows (the tenant's, a key's own)
BURST_WINDOW_SECONDS = 1
USAGE_BUCKET_SECONDS = 60  # usage is counted per key and minute
RECORD_TTL_SECONDS = 86_400
# Usage minutes outlive the roll-up's settling time (apikeys/services.py) with room for a stopped beat;
# a month counter outlives its month by as much, so the roll-up reads its final figure.
USAGE_TTL_SECONDS = 2 * 86_400

# Redis key names: a prefix is followed by the id named in its comment.
KEY_RECORD_PREFIX = "apk:rec:"  # a key's cached record, by the SHA-256 of the key
KEY_MINUTE_WINDOW_PREFIX = "apk:rl:"  # a key's own per-minute window, by lookup id
# A tenant's windows over all its keys, by tenant id (lookup ids have no ':', so no clash with the above).
TENANT_MINUTE_WINDOW_PREFIX = "apk:rl:t:"
TENANT_BURST_WINDOW_PREFIX = "apk:rl:b:"
TENANT_MONTH_UNITS_PREFIX = "apk:month:"  # a tenant's units in a month: <prefix><tenant id>:<YYYYMM>
TENANT_RECORD_PREFIX = "apk:tenant:"  # a tenant's cached status and usage plan, by tenant id
USAGE_MINUTE_PREFIX = "apk:usage:"  # usage counters of one minute (epoch seconds), fields <key id>:<metric>
USAGE_MINUTES_TO_ROLL_UP = "apk:usage:minutes"  # sorted set of the minutes the roll-up has still to read
LAST_USED_STAMPS = "apk:lastused"  # hash: key id -> epoch second of its last request

# Decision codes returned by the script.
OK, MISS, INVALID, REVOKED, EXPIRED, TENANT_MISS, SUSPENDED, RATE_LIMITED = range(8)
# A cached record's `rev` after its key was removed from the database (a restore, a deleted tenant): the key
# is unknown, and a fill (which writes only where nothing is) cannot bring the old record back meanwhile.
REMOVED_FLAG = "gone"
# The policies of the RateLimit headers, in the order they are listed.
BURST_POLICY, MINUTE_POLICY, KEY_POLICY, MONTH_POLICY = "burst", "minute", "key", "month"

# The constants the gateway script uses, declared as Lua locals of the same names ahead of its source when
# it is loaded (redis_store.py): the script holds no literal of its own, so Python and Lua cannot drift
# apart, and nothing constant travels with each call.
SCRIPT_CONSTANTS = {
    name: globals()[name]
    for name in (
        "TENANT_RECORD_PREFIX", "TENANT_MINUTE_WINDOW_PREFIX", "TENANT_BURST_WINDOW_PREFIX",
        "TENANT_MONTH_UNITS_PREFIX", "USAGE_MINUTE_PREFIX", "REMOVED_FLAG", "USAGE_TTL_SECONDS", "WINDOW_SECONDS",
        "USAGE_BUCKET_SECONDS", "BURST_WINDOW_SECONDS", "OK", "MISS", "INVALID", "REVOKED", "EXPIRED",
        "TENANT_MISS", "SUSPENDED", "RATE_LIMITED", "BURST_POLICY", "MINUTE_POLICY", "KEY_POLICY", "MONTH_POLICY",
    )
}  # fmt: skip


class Month(NamedTuple):
    """A calendar month (UTC): its id as the counters name it, and its bounds in epoch seconds."""

    id: str  # YYYYMM
    start: int
    end: int

    @property
    def seconds(self) -> int:
        return self.end - self.start

    @property
    def first_day(self) -> datetime.date:
        return datetime.date(int(self.id[:4]), int(self.id[4:]), 1)


_month: Month | None = None


def month_of(epoch_seconds: float) -> Month:
    day = datetime.datetime.fromtimestamp(epoch_seconds, tz=datetime.UTC).date().replace(day=1)
    following = (day + datetime.timedelta(days=32)).replace(day=1)
    as_epoch = lambda date: int(datetime.datetime(date.year, date.month, 1, tzinfo=datetime.UTC).timestamp())  # noqa: E731
    return Month(f"{day:%Y%m}", as_epoch(day), as_epoch(following))


def current_month() -> Month:
    """This month, computed once a month per process (the hot path only compares a number)."""
    global _month
    now = time.time()
    month = _month
    if month is None or not month.start <= now < month.end:
        month = _month = month_of(now)
    return month


class Decision(NamedTuple):  # a tuple: built once per request, cheaply
    code: int
    key_id: str = ""
    tenant_id: str = ""
    scopes: tuple[str, ...] = ()
    tier: str = ""
    # The policy closest to its limit (the one that refused, when refused): its limit, what is left of
    # it after this request and when it frees up; the RateLimit headers report it. "" when none applies.
    policy: str = ""
    limit: int = 0
    remaining: int = 0
    reset_seconds: int = 0
    # The plan as applied (0: no such limit); key_limit only when the key's own is below the tenant's.
    burst_limit: int = 0
    minute_limit: int = 0
    key_limit: int = 0
    monthly_quota: int = 0

    @classmethod
    def from_reply(cls, reply: list) -> "Decision":
        code = int(reply[0])
        if len(reply) < 13:
            return cls(code, *(item.decode() if isinstance(item, bytes) else str(item) for item in reply[1:3]))
        key_id, tenant_id, scopes, tier, policy = (item.decode() for item in reply[1:6])
        return cls(
            code, key_id, tenant_id, tuple(scopes.split()), tier, policy, int(reply[6]), int(reply[7]),
            int(reply[8]), int(reply[9]), int(reply[10]), int(reply[11]), int(reply[12]),
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


def tenant_fields(
    *, status: str, tier: str, burst: int | None, minute: int | None, quota: int | None, month: str, month_units: int
) -> dict:
    """The tenant's status and usage plan as the script reads them ('' for no limit of a kind), with the
    units the database holds for `month`: the seed of a month counter Redis lost."""
    return {
        "s": status, "tier": tier, "b": str(burst or ""), "lim": str(minute or ""), "q": str(quota or ""),
        "qm": month, "qs": str(month_units),
    }  # fmt: skip


class GatewayStore(abc.ABC):
    """Cached key and tenant records, the limit windows and the usage counters, behind one interface."""

    @abc.abstractmethod
    def evaluate(self, *, lookup_id: str, secret_hash: str, outcomes: list, cost: int = 1) -> Decision:
        """Decide one request of `cost` units (and apply earlier requests' outcomes) atomically."""

    def send_evaluate(
        self, *, lookup_id: str, secret_hash: str, outcomes: list, cost: int = 1
    ) -> Callable[[], Decision]:
        """Start `evaluate`; the returned function gives its decision (a store may answer at once)."""
        decision = self.evaluate(lookup_id=lookup_id, secret_hash=secret_hash, outcomes=outcomes, cost=cost)
        return lambda: decision

    @abc.abstractmethod
    def flush_outcomes(self, outcomes: list) -> None: ...

    @abc.abstractmethod
    def fill_record(self, lookup_id: str, fields: dict) -> None:
        """Write a key record unless one is there (a concurrent revocation wins)."""

    @abc.abstractmethod
    def put_record(self, lookup_id: str, fields: dict) -> None:
        """Overwrite a key record."""

    @abc.abstractmethod
    def fill_tenant(self, tenant_id: str, fields: dict) -> None: ...

    @abc.abstractmethod
    def put_tenant(self, tenant_id: str, fields: dict) -> None: ...

    @abc.abstractmethod
    def usage_minutes(self) -> list[int]:
        """The minutes whose usage is still to be rolled up."""

    @abc.abstractmethod
    def usage_read(self, minute: int) -> dict[str, dict[str, int]]: ...

    @abc.abstractmethod
    def usage_forget(self, minutes: list[int]) -> None: ...

    @abc.abstractmethod
    def last_used_read(self) -> dict[str, int]: ...

    @abc.abstractmethod
    def last_used_forget(self, stamps: dict[str, int]) -> None:
        """Forget the stamps given, unless a newer request stamped the key meanwhile."""

    @abc.abstractmethod
    def month_units(self, tenant_ids: list[str], month: str) -> dict[str, int]:
        """The units counted this month per tenant, for the tenants whose counter exists."""

    @abc.abstractmethod
    def reset_limit(self, lookup_id: str, tenant_id: str | None = None) -> None:
        """Empty a key's window (and its tenant's windows, when named; never its month)."""


@process_singleton
def gateway_store() -> GatewayStore:
    """The store for this process: Redis when REDIS_URL is set, else in memory (embedded_store.py)."""
    if settings.REDIS_URL:
        from django_redis import get_redis_connection

        from .redis_store import RedisGatewayStore

        return RedisGatewayStore(get_redis_connection("default"))
    from .embedded_store import EmbeddedGatewayStore

    return EmbeddedGatewayStore()
