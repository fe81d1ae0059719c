"""The gateway store in process memory, for embedded mode (no Redis): the same decisions under one lock.

Thread-safe: every read-modify-write holds `_lock`, so one process serving with threads decides exactly.
"""

import functools
import threading
import time

from ..keyformat import hashes_match
from .base import (
    BURST_POLICY,
    BURST_WINDOW_SECONDS,
    EXPIRED,
    INVALID,
    KEY_POLICY,
    MINUTE_POLICY,
    MISS,
    MONTH_POLICY,
    OK,
    RATE_LIMITED,
    REMOVED_FLAG,
    REVOKED,
    SUSPENDED,
    TENANT_MINUTE_WINDOW_PREFIX,
    TENANT_MISS,
    USAGE_BUCKET_SECONDS,
    WINDOW_SECONDS,
    Decision,
    GatewayStore,
    current_month,
)


class MemoryGatewayStore(GatewayStore):
    """The same decisions in one process, for embedded mode (local-memory cache, no Redis)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.records: dict[str, dict] = {}
        self.tenants: dict[str, dict] = {}
        self.buckets: dict[str, dict[int, int]] = {}  # per-minute windows: second -> units
        self.bursts: dict[str, tuple[int, int]] = {}  # tenant id -> (slot, units)
        self.months: dict[tuple[str, str], int] = {}  # (tenant id, YYYYMM) -> units
        self.usage: dict[int, dict[str, dict[str, int]]] = {}
        self.last_used: dict[str, int] = {}

    def _count(self, minute: int, key_id: str, metric: str, amount: int, *, maximum: bool = False) -> None:
        metrics = self.usage.setdefault(minute, {}).setdefault(key_id, {})
        metrics[metric] = max(metrics.get(metric, 0), amount) if maximum else metrics.get(metric, 0) + amount

    def evaluate(self, *, lookup_id: str, secret_hash: str, outcomes: list, cost: int = 1) -> Decision:
        now = time.time()
        now_s = int(now)
        month = current_month()
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
            tenant_id = rec["t"]
            tenant = self.tenants.get(tenant_id)
            if tenant is None:
                return Decision(TENANT_MISS, rec["id"], tenant_id)
            if tenant["s"] != "active":
                return Decision(SUSPENDED, rec["id"], tenant_id)
            burst, minute_limit, quota = (int(tenant[field] or 0) for field in ("b", "lim", "q"))
            key_limit = int(rec["lim"] or 0)
            if minute_limit and key_limit >= minute_limit:
                key_limit = 0
            # (policy, limit, units used, reset seconds, count, wait): in the order the headers list them; wait
            # (a sliding window's) gives a refused request's exact wait, given the units it is short of.
            windows = []
            if burst:
                slot = now_s - now_s % BURST_WINDOW_SECONDS
                held_slot, units = self.bursts.get(tenant_id, (slot, 0))
                used = units if held_slot == slot else 0
                windows.append((BURST_POLICY, burst, used, slot + BURST_WINDOW_SECONDS - now_s,
                                functools.partial(self.bursts.__setitem__, tenant_id, (slot, used + cost)), None))  # fmt: skip
            for policy, limit, name in ((MINUTE_POLICY, minute_limit, TENANT_MINUTE_WINDOW_PREFIX + tenant_id),
                                        (KEY_POLICY, key_limit, lookup_id)):  # fmt: skip
                if limit:
                    windows.append((policy, limit, *self._sliding(name, now_s, cost)))
            # The month is counted with or without a quota, seeded like a counter Redis lost.
            month_key = (tenant_id, month.id)
            if month_key not in self.months:
                self.months[month_key] = int(tenant["qs"] or 0) if tenant["qm"] == month.id else 0
            if quota:
                windows.append((MONTH_POLICY, quota, self.months[month_key], month.end - now_s, lambda: None, None))
            minute = now_s // USAGE_BUCKET_SECONDS * USAGE_BUCKET_SECONDS
            self._count(minute, rec["id"], "r", 1)
            self.last_used[rec["id"]] = now_s
            common = {"key_id": rec["id"], "tenant_id": tenant_id, "scopes": tuple(rec["sc"].split())}
            common |= {"tier": tenant["tier"], "burst_limit": burst, "minute_limit": minute_limit}
            common |= {"key_limit": key_limit, "monthly_quota": quota}
            refused = next((window for window in windows if window[1] - window[2] < cost), None)
            if refused is not None:
                self._count(minute, rec["id"], "l", 1)
                policy, limit, used, reset, _, wait = refused
                if wait is not None:
                    reset = wait(cost - (limit - used))
                return Decision(RATE_LIMITED, policy=policy, limit=limit, remaining=max(limit - used, 0),
                                reset_seconds=reset, **common)  # fmt: skip
            for *_, count, _ in windows:
                count()
            self.months[month_key] += cost
            self._count(minute, rec["id"], "u", cost)
            if not windows:
                return Decision(OK, remaining=-1, **common)
            policy, limit, used, reset, *_ = min(windows, key=lambda window: window[1] - window[2])  # first of equals
            return Decision(
                OK, policy=policy, limit=limit, remaining=limit - used - cost, reset_seconds=reset, **common
            )

    def _sliding(self, name: str, now_s: int, cost: int) -> tuple:
        """A per-minute window's units, its reset, the function that counts this request in it and the one
        that tells a refused request when enough units will have left the window for it to fit."""
        buckets = self.buckets.setdefault(name, {})
        for second in [second for second in buckets if second < now_s - WINDOW_SECONDS]:
            del buckets[second]
        reset = (min(buckets) if buckets else now_s) + WINDOW_SECONDS + 1 - now_s

        def count():
            buckets[now_s] = buckets.get(now_s, 0) + cost

        def wait(short: int) -> int:
            freed = 0
            for second in sorted(buckets):
                freed += buckets[second]
                if freed >= short:
                    return second + WINDOW_SECONDS + 1 - now_s
            return reset  # a cost above the limit itself never fits

        return sum(buckets.values()), reset, count, wait

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

    def month_units(self, tenant_ids: list[str], month: str) -> dict[str, int]:
        with self._lock:
            return {tenant_id: self.months[(tenant_id, month)] for tenant_id in tenant_ids
                    if (tenant_id, month) in self.months}  # fmt: skip

    def reset_limit(self, lookup_id: str, tenant_id: str | None = None) -> None:
        with self._lock:
            self.buckets.pop(lookup_id, None)
            if tenant_id:
                self.buckets.pop(TENANT_MINUTE_WINDOW_PREFIX + tenant_id, None)
                self.bursts.pop(tenant_id, None)
