"""Outcomes of finished requests (status class, latency), carried to the store with later script calls."""

import threading
import time

from .base import gateway_store

PIGGYBACK_SECONDS = 0.5
IDLE_FLUSH_SECONDS = 5.0


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
        if not self._pending:  # the usual case, answered without the lock (checked again under it)
            return []
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
        if not self._pending:  # the usual case, answered without the lock
            return False
        with self._lock:
            return bool(self._pending) and time.monotonic() - self._since > seconds


pending = OutcomeBuffer()  # this process's outcomes not yet sent


def flush_pending_outcomes() -> None:
    """Send this process's pending outcomes now (an idle process, or shutdown); kept on failure."""
    taken = pending.take()
    if not taken:
        return
    try:
        gateway_store().flush_outcomes(taken)
    except Exception:
        pending.put_back(taken)
