"""Replica positions and health, polled in the background and cached per process.

The router never queries a replica to decide where a read goes: a daemon thread polls the primary's WAL
position and each replica's replayed position every DATABASE_REPLICA_POLL_INTERVAL seconds and publishes
an immutable snapshot that the router reads with one attribute access.

Lag is judged by LSN: on an idle primary `now() - pg_last_xact_replay_timestamp()` keeps growing although
nothing is missing, so a replica that has replayed everything has zero lag, and a replica that is behind
is measured from the moment the monitor first saw it behind (capped by the replay timestamp's age).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

from core.singletons import process_singleton

logger = logging.getLogger(__name__)

MONITOR_APPLICATION_NAME = "platform-replica-monitor"


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    alias: str
    up: bool
    replay_lsn: int | None = None
    lag_bytes: int | None = None
    lag_seconds: float | None = None
    in_rotation: bool = False
    error: str = ""

    def as_dict(self) -> dict:
        return {
            "up": self.up,
            "replay_lsn": format_lsn(self.replay_lsn),
            "lag_bytes": self.lag_bytes,
            "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
            "in_rotation": self.in_rotation,
            **({"error": self.error} if self.error else {}),
        }


@dataclass(frozen=True, slots=True)
class Snapshot:
    taken_at: float  # time.monotonic()
    primary_up: bool
    primary_lsn: int | None
    replicas: dict[str, ReplicaStatus]
    rotation: tuple[ReplicaStatus, ...]  # the replicas reads may use, in configuration order


def format_lsn(lsn: int | None) -> str | None:
    return None if lsn is None else f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def _connect_kwargs(alias: str) -> dict:
    config = settings.DATABASES[alias]
    kwargs = {
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
        "dbname": config.get("NAME"),
        "application_name": MONITOR_APPLICATION_NAME,
        "connect_timeout": max(1, int(settings.DATABASE_REPLICA_POLL_TIMEOUT)),
        # A hung server must not stall the poll loop.
        "options": f"-c statement_timeout={int(settings.DATABASE_REPLICA_POLL_TIMEOUT * 1000)}",
        "autocommit": True,
    }
    for option in ("sslmode", "sslrootcert", "sslcert", "sslkey"):
        if option in config.get("OPTIONS", {}):
            kwargs[option] = config["OPTIONS"][option]
    return {key: value for key, value in kwargs.items() if value is not None}


class ReplicaMonitor:
    def __init__(self, aliases: tuple[str, ...]):
        self.aliases = aliases
        self._snapshot: Snapshot | None = None
        self._connections: dict[str, psycopg.Connection] = {}
        self._behind_since: dict[str, float] = {}
        self._lock = threading.Lock()
        # psycopg connections are not for concurrent use: one poll at a time (poller or a display).
        self._poll_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        os.register_at_fork(after_in_child=self._after_fork)
        self._wake = threading.Event()
        self._stopping: threading.Thread | None = None  # the poller thread asked to exit

    # --- reading ------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot | None:
        """The latest snapshot, or None while none is fresh (then reads use the primary)."""
        if self._thread is None:
            self._start()
        snapshot = self._snapshot
        if snapshot is None or time.monotonic() - snapshot.taken_at > self.max_age():
            return None
        return snapshot

    def max_age(self) -> float:
        # A poller that stopped polling must not keep stale positions in use.
        return max(3 * settings.DATABASE_REPLICA_POLL_INTERVAL, 2 * settings.DATABASE_REPLICA_POLL_TIMEOUT + 1)

    def status(self) -> Snapshot:
        """A snapshot for display (readyz, metrics, admin): polls now if none is fresh."""
        return self.snapshot() or self.refresh()

    def primary_reachable(self) -> bool:
        # Without replicas there is no poller to start: probe once.
        snapshot = self.snapshot() if self.aliases else None
        if snapshot is not None:
            return snapshot.primary_up
        with self._poll_lock:
            return self._primary_lsn() is not None

    # --- polling ------------------------------------------------------------------------------
    def _after_fork(self) -> None:
        # The parent's thread and connections are not the child's: it starts its own on first use.
        self._thread = None
        self._connections = {}
        self._snapshot = None
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="replica-monitor", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop polling and close the monitor's connections (tests drop their database afterwards)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping = thread
            self._wake.set()
            thread.join(timeout=5)
        with self._poll_lock:
            for connection in self._connections.values():
                connection.close()
            self._connections = {}
        self._snapshot = None

    def _run(self) -> None:
        me = threading.current_thread()
        while self._stopping is not me:
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - the poller must survive anything; the snapshot just ages
                logger.exception("replica monitor poll failed")
            self._wake.wait(settings.DATABASE_REPLICA_POLL_INTERVAL)
            self._wake.clear()

    def poll_now(self) -> None:
        """Ask the poller for an immediate round (used after fault injection in tests and the admin)."""
        self._wake.set()

    def _query(self, alias: str, sql: str):
        connection = self._connections.get(alias)
        try:
            if connection is None or connection.closed:
                connection = psycopg.connect(**_connect_kwargs(alias))
                self._connections[alias] = connection
            return connection.execute(sql).fetchone()
        except psycopg.Error:
            self._connections.pop(alias, None)
            if connection is not None:
                connection.close()
            raise

    def _primary_lsn(self) -> int | None:
        try:
            return int(self._query(DEFAULT_DB_ALIAS, "SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn")[0])
        except psycopg.Error as exc:
            logger.warning("primary unreachable: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return None

    def refresh(self) -> Snapshot:
        with self._poll_lock:
            return self._refresh()

    def _refresh(self) -> Snapshot:
        replica_rows = {}
        for alias in self.aliases:
            try:
                replica_rows[alias] = self._query(
                    alias,
                    "SELECT pg_is_in_recovery(),"
                    " pg_last_wal_replay_lsn() - '0/0'::pg_lsn,"
                    " pg_last_wal_receive_lsn() - '0/0'::pg_lsn,"
                    " EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())",
                )
            except psycopg.Error as exc:
                replica_rows[alias] = exc
        # The primary is read after the replicas so their lag is never underestimated.
        primary_lsn = self._primary_lsn()
        now = time.monotonic()
        replicas = {alias: self._status(alias, row, primary_lsn, now) for alias, row in replica_rows.items()}
        snapshot = Snapshot(
            taken_at=now,
            primary_up=primary_lsn is not None,
            primary_lsn=primary_lsn,
            replicas=replicas,
            rotation=tuple(status for status in replicas.values() if status.in_rotation),
        )
        self._snapshot = snapshot
        return snapshot

    def _status(self, alias: str, row, primary_lsn: int | None, now: float) -> ReplicaStatus:
        if isinstance(row, Exception):
            self._behind_since.pop(alias, None)
            message = str(row).splitlines()[0][:200] if str(row) else type(row).__name__
            return ReplicaStatus(alias=alias, up=False, error=message)
        in_recovery, replay_lsn, receive_lsn, replay_age = row
        if not in_recovery or replay_lsn is None:
            # Promoted or not a standby: reading from it would not be reading a replica of our primary.
            return ReplicaStatus(alias=alias, up=True, error="not in recovery")
        replay_lsn = int(replay_lsn)
        reference = primary_lsn if primary_lsn is not None else int(receive_lsn or replay_lsn)
        lag_bytes = max(0, reference - replay_lsn)
        if lag_bytes == 0:
            self._behind_since.pop(alias, None)
            lag_seconds = 0.0
        else:
            behind_for = now - self._behind_since.setdefault(alias, now)
            lag_seconds = behind_for if replay_age is None else min(behind_for, float(replay_age))
        in_rotation = (
            lag_bytes <= settings.DATABASE_REPLICA_MAX_LAG_BYTES
            and lag_seconds <= settings.DATABASE_REPLICA_MAX_LAG_SECONDS
        )
        return ReplicaStatus(
            alias=alias,
            up=True,
            replay_lsn=replay_lsn,
            lag_bytes=lag_bytes,
            lag_seconds=lag_seconds,
            in_rotation=in_rotation,
        )


@process_singleton
def get_monitor() -> ReplicaMonitor:
    return ReplicaMonitor(tuple(settings.DATABASE_REPLICAS))


def replicas_wait_for(lsn: int, *, timeout: float = 30.0) -> None:
    """Wait until every replica has replayed the primary's WAL up to `lsn` (e.g. routing.primary_lsn() after
    a commit): for a process whose peers (servers, benchmark clients) will read its writes from any replica
    without a write position of their own. TimeoutError naming the replicas still behind."""
    monitor = get_monitor()
    deadline = time.monotonic() + timeout
    while True:
        replicas = monitor.refresh().replicas
        behind = [alias for alias, status in replicas.items() if status.replay_lsn is None or status.replay_lsn < lsn]
        if not behind:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"replica {', '.join(behind)} did not replay {format_lsn(lsn)} within {timeout:g} s")
        time.sleep(0.05)


def replica_status() -> dict:
    """Per-replica status for /readyz and the admin page."""
    snapshot = get_monitor().status()
    return {
        "primary": {"up": snapshot.primary_up, "lsn": format_lsn(snapshot.primary_lsn)},
        "replicas": {alias: status.as_dict() for alias, status in snapshot.replicas.items()},
    }
