"""The delivery HTTP client: one per worker process, keep-alive pools pinned to checked addresses.

urllib3 does the HTTP. A pool is keyed by (scheme, address, port, host): it connects to the address
the SSRF guard checked, while the Host header, TLS SNI and certificate check use the hostname. Never
follows redirects (a 3xx is a failed attempt) and never retries by itself (the retry schedule does).
"""

import time
from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock

import urllib3
from django.conf import settings

from .ssrf import Destination

EXCERPT_BYTES = 1024
# A body longer than this is not drained: the connection is closed instead of reused.
DRAIN_LIMIT_BYTES = 64 * 1024
MAX_POOLS = 256
MAX_ATTEMPT_SECONDS = 15


@dataclass
class Response:
    status: int | None
    excerpt: str
    error: str
    duration_ms: int
    retry_after: float | None


class PinnedClient:
    def __init__(self, *, pool_maxsize: int, connect_timeout: float, read_timeout: float):
        self._pools: OrderedDict[tuple, urllib3.HTTPConnectionPool] = OrderedDict()
        self._lock = Lock()
        self._pool_maxsize = pool_maxsize
        # Never more than 15 s in all for one attempt, whatever the settings say.
        self._deadline_seconds = min(connect_timeout + read_timeout, MAX_ATTEMPT_SECONDS)
        self._timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout, total=self._deadline_seconds)

    def _pool(self, destination: Destination) -> urllib3.HTTPConnectionPool:
        key = (destination.scheme, destination.address, destination.port, destination.host)
        with self._lock:
            pool = self._pools.get(key)
            if pool is not None:
                self._pools.move_to_end(key)
                return pool
            options = {"port": destination.port, "maxsize": self._pool_maxsize, "block": False, "retries": False}
            if destination.scheme == "https":
                pool = urllib3.HTTPSConnectionPool(
                    destination.address,
                    server_hostname=destination.host,
                    assert_hostname=destination.host,
                    cert_reqs="CERT_REQUIRED",
                    **options,
                )
            else:
                pool = urllib3.HTTPConnectionPool(destination.address, **options)
            self._pools[key] = pool
            while len(self._pools) > MAX_POOLS:
                self._pools.popitem(last=False)[1].close()
            return pool

    def post(self, destination: Destination, *, body: bytes, headers: dict[str, str]) -> Response:
        host_header = destination.host if ":" not in destination.host else f"[{destination.host}]"
        default_port = 443 if destination.scheme == "https" else 80
        if destination.port != default_port:
            host_header += f":{destination.port}"
        headers = {
            **headers,
            "Host": host_header,
            "Content-Type": "application/json",
            "User-Agent": "platform-webhooks/1",
        }
        started = time.monotonic()
        try:
            response = self._pool(destination).urlopen(
                "POST",
                destination.target,
                body=body,
                headers=headers,
                redirect=False,
                retries=False,
                timeout=self._timeout,
                preload_content=False,
                assert_same_host=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            return Response(None, "", _describe(exc), _ms_since(started), None)
        try:
            excerpt = response.read(EXCERPT_BYTES)
            _drain(response, deadline=started + self._deadline_seconds)
        except urllib3.exceptions.HTTPError as exc:
            response.release_conn()
            return Response(response.status, "", _describe(exc), _ms_since(started), None)
        return Response(
            response.status,
            excerpt.decode("utf-8", errors="replace"),
            "",
            _ms_since(started),
            _retry_after(response.headers.get("Retry-After")),
        )


def _drain(response, *, deadline: float) -> None:
    """Read the rest of a short body so the connection goes back to the pool; close it otherwise."""
    if response.length_remaining == 0:  # the excerpt was the whole (Content-Length) body: nothing to read
        response.release_conn()
        return
    drained = 0
    while drained <= DRAIN_LIMIT_BYTES and time.monotonic() < deadline:
        chunk = response.read(8192)
        if not chunk:
            response.release_conn()
            return
        drained += len(chunk)
    response.close()
    response.release_conn()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _describe(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    name = type(exc).__name__
    return f"{name}: {reason or exc}"[:500]


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


_client: PinnedClient | None = None
_client_lock = Lock()


def client() -> PinnedClient:
    """The process's client, created on first use (so after a worker's fork, never shared across it)."""
    global _client
    with _client_lock:
        if _client is None:
            _client = PinnedClient(
                pool_maxsize=settings.WEBHOOKS_POOL_MAXSIZE,
                connect_timeout=settings.WEBHOOKS_CONNECT_TIMEOUT,
                read_timeout=settings.WEBHOOKS_READ_TIMEOUT,
            )
        return _client
