"""Routing context for the primary/replica router: who the client is and what it must see.

One `RoutingState` per request or task, held in a ContextVar so threads and async tasks never share it.
Read-your-writes across requests and processes (GitLab's load balancer does the same): after a client's
write, the primary's WAL position (LSN) is recorded in the cache (Redis) under each of the client's
identities with a short TTL; the router then reads for that client only from a replica whose replayed
LSN is at least that position, else from the primary.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
from contextlib import ContextDecorator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils.functional import empty

logger = logging.getLogger(__name__)

LSN_KEY_PREFIX = "platform:db:lsn:"
# Celery message headers that carry a client's position to the worker (see dbrouting/celery_signals.py).
TASK_LSN_HEADER = "platform_min_lsn"
TASK_CLIENTS_HEADER = "platform_client_ids"


def lsn_to_int(lsn: str) -> int:
    """PostgreSQL's 'XXXXXXXX/YYYYYYYY' text form as a byte position."""
    high, low = lsn.split("/")
    return (int(high, 16) << 32) | int(low, 16)


@dataclass(slots=True, eq=False)
class RoutingState:
    """What the router must honour for one request or task."""

    request: Any = None  # identities are read from it lazily (the API-key gateway may run after us)
    client_ids: tuple[str, ...] = ()  # explicit identities, e.g. carried by a task
    min_lsn: int = 0  # explicit position to honour, e.g. carried by a task
    wrote: bool = False  # set by the router on any write: later reads in this context use the primary
    primary_depth: int = 0  # > 0 inside use_primary()
    stale_ok_seconds: float | None = None  # set inside accept_stale()
    primary: Any = field(default=None, repr=False)  # this context's `default` connection, looked up once
    _lsn_for: tuple[str, ...] | None = field(default=None, repr=False)
    _recorded_lsn: int = field(default=0, repr=False)

    def identities(self) -> tuple[str, ...]:
        if self.request is None:
            return self.client_ids
        return tuple(dict.fromkeys(self.client_ids + request_client_ids(self.request)))

    def required_lsn(self) -> int | None:
        """The WAL position this context's reads must see; None when unknown (read from the primary)."""
        ids = self.identities()
        if not ids:
            return self.min_lsn
        if ids != self._lsn_for:
            try:
                recorded = cache.get_many([LSN_KEY_PREFIX + client_id for client_id in ids])
            except Exception:  # noqa: BLE001 - without the cache we cannot prove freshness: use the primary
                logger.warning("read-your-writes positions unavailable; reading from the primary", exc_info=True)
                return None
            self._recorded_lsn = max((int(value) for value in recorded.values()), default=0)
            self._lsn_for = ids
        return max(self.min_lsn, self._recorded_lsn)


_state: contextvars.ContextVar[RoutingState] = contextvars.ContextVar("platform_db_routing")


def current_state() -> RoutingState:
    """This context's state; a thread outside any request or task gets one of its own on first use."""
    try:
        return _state.get()
    except LookupError:
        state = RoutingState()
        _state.set(state)
        return state


def begin(
    *, request: Any = None, client_ids: tuple[str, ...] = (), min_lsn: int = 0
) -> contextvars.Token[RoutingState]:
    """Start a fresh routing context (a request or a task). An enclosing use_primary() still applies."""
    enclosing = _state.get(None)
    state = RoutingState(request=request, client_ids=client_ids, min_lsn=min_lsn)
    if enclosing is not None:
        state.primary_depth = enclosing.primary_depth
    return _state.set(state)


def end(token: contextvars.Token[RoutingState]) -> None:
    _state.reset(token)


def request_client_ids(request) -> tuple[str, ...]:
    """Every identity a request is known by: API key (set by the gateway), user, session.

    All are recorded after a write and all are consulted before a read, so a write made when only the
    session was known is honoured later when the user or key is known too, and vice versa.
    """
    ids = []
    api_key = getattr(request, "api_key", None)
    if api_key is not None and getattr(api_key, "id", None) is not None:
        ids.append(f"key:{api_key.id}")
    user = request.__dict__.get("user")
    # AuthenticationMiddleware's user is lazy: evaluating it here would be a query inside routing.
    if user is not None and getattr(user, "_wrapped", None) is not empty:
        # API-key requests carry a user without a primary key: that is not an identity (all keys would
        # share it, and one client's write would pin every other client to the primary).
        if getattr(user, "is_authenticated", False) and getattr(user, "pk", None) is not None:
            ids.append(f"user:{user.pk}")
    session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if session_key:
        # Hashed so the cache never holds a usable session key.
        ids.append("session:" + hashlib.sha256(session_key.encode()).hexdigest()[:32])
    return tuple(ids)


def primary_lsn() -> int:
    """The primary's WAL insert position: at or past the end of every commit record made so far.

    Not pg_current_wal_lsn(): that is the *write* position, which with synchronous_commit=off can still
    be before our own commit record, and a replica at it would not show the write yet.
    """
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_insert_lsn()::text")
        return lsn_to_int(cursor.fetchone()[0])


def record_client_write(client_ids: tuple[str, ...], lsn: int | None = None) -> int | None:
    """Remember for each identity that its reads must see the primary's position from now on."""
    if not client_ids:
        return None
    lsn = primary_lsn() if lsn is None else lsn
    keys = [LSN_KEY_PREFIX + client_id for client_id in client_ids]
    try:
        _store_max(keys, lsn, settings.DATABASE_REPLICA_STICKY_SECONDS)
    except Exception:  # noqa: BLE001 - the write itself succeeded; its readers fall back to LSN-less routing
        logger.error("could not record read-your-writes position", exc_info=True)
    return lsn


# Keeps the highest position per key: two concurrent requests of one client may record out of order.
_STORE_MAX_LUA = """
for _, key in ipairs(KEYS) do
  local old = tonumber(redis.call('GET', key) or '0') or 0
  if tonumber(ARGV[1]) > old then
    redis.call('SET', key, ARGV[1], 'EX', ARGV[2])
  else
    redis.call('EXPIRE', key, ARGV[2])
  end
end
"""


def _store_max(keys: list[str], lsn: int, timeout: int) -> None:
    try:
        from django_redis import get_redis_connection

        client = get_redis_connection("default")
    except (ImportError, NotImplementedError, AttributeError):
        # Not Redis (embedded mode): one process, no replicas in practice; plain writes are enough.
        cache.set_many(dict.fromkeys(keys, lsn), timeout=timeout)
        return
    # django-redis stores ints as plain numbers, so cache.get_many() reads these values back as ints.
    client.eval(_STORE_MAX_LUA, len(keys), *(cache.make_key(key) for key in keys), str(lsn), str(timeout))


class use_primary(ContextDecorator):  # noqa: N801 - reads like a function, as Django's atomic does
    """Send every query in the block (or decorated function) to the primary."""

    def __enter__(self):
        current_state().primary_depth += 1
        return self

    def __exit__(self, *exc):
        current_state().primary_depth -= 1
        return False


class accept_stale(ContextDecorator):  # noqa: N801
    """A read-only view that tolerates data up to `max_lag_seconds` old may read from any replica
    within that bound, ignoring the client's recorded position (its own writes in this same request
    still go to the primary)."""

    def __init__(self, max_lag_seconds: float):
        if max_lag_seconds < 0:
            raise ValueError("max_lag_seconds must be >= 0")
        self.max_lag_seconds = max_lag_seconds
        self._previous: list[float | None] = []

    def _recreate_cm(self):
        # A fresh instance per decorated call, so concurrent calls never share the saved values.
        return type(self)(self.max_lag_seconds)

    def __enter__(self):
        state = current_state()
        self._previous.append(state.stale_ok_seconds)
        state.stale_ok_seconds = self.max_lag_seconds
        return self

    def __exit__(self, *exc):
        current_state().stale_ok_seconds = self._previous.pop()
        return False
