"""The gateway store in process memory, for embedded mode (no Redis): the same decisions under one lock.

Thread-safe: every read-modify-write holds `_lock`, so one process serving with threads decides exactly.
"""

import threading
import time

from ..keyformat import hashes_match
from .base import (
    EXPIRED,
    INVALID,
    KEY_POLICY,
    MISS,
    OK,
    RATE_LIMITED,
    REMOVED_FLAG,
    REVOKED,
    SUSPENDED,
    TENANT_LIMIT,
    TENANT_MISS,
    TENANT_POLICY,
    USAGE_BUCKET_SECONDS,
    WINDOW_SECONDS,
    Decision,
    GatewayStore,
)  # fmt: skip


class MemoryGatewayStore(GatewayStore):
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
            minute = now_s // USAGE_BUCKET_SECONDS * USAGE_BUCKET_SECONDS
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
