"""The delivery HTTP client: libcurl (pycurl), keep-alive connections pinned to checked addresses.

A libcurl multi handle sends a batch's requests concurrently (no Python threads, and libcurl parses the
HTTP in C) and keeps its connections alive between batches. The process keeps its multi handles in a pool,
the one returned last taken first: a task on any thread of the worker's pool finds the connections the last
one left warm (a handle per thread opened a connection, over TLS a handshake, per thread and receiver; a
burst of them overflowed small receivers' listen queues, whose dropped SYNs cost a second each). Each request connects
to the address the SSRF guard checked (CURLOPT_CONNECT_TO) while the URL keeps the hostname, so the
Host header, TLS SNI and the certificate check use the name. Never follows redirects, never uses a
proxy from the environment, never retries by itself (the retry schedule does).
"""

import functools
import os
import ssl
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import pycurl
from django.conf import settings

from core.singletons import process_singleton

from .ssrf import Destination

EXCERPT_BYTES = 1024
# A body longer than this is not read to its end: the connection is closed instead of reused.
DRAIN_LIMIT_BYTES = 64 * 1024
MAX_CONNECTIONS = 256  # kept alive per multi handle, least recently used closed first
MAX_ATTEMPT_SECONDS = 15
# Requests at once to a host this multi handle has no answered connections to; each time as many as allowed
# are answered, twice as many (up to the pool's size): new connections ramp up instead of arriving at once.
FIRST_CONNECTIONS = 2
# A request unanswered this long no longer holds new connections back (a slow or hanging receiver, or a
# dropped SYN): the ramp limits bursts of connections, not requests to slow receivers.
RAMP_WAIT_SECONDS = 1.0

# libcurl's error codes, named for the attempt log (the rest are "CurlError").
_ERROR_NAMES = {
    pycurl.E_OPERATION_TIMEOUTED: "Timeout",
    pycurl.E_COULDNT_CONNECT: "ConnectError",
    pycurl.E_GOT_NOTHING: "EmptyReply",
    pycurl.E_SEND_ERROR: "SendError",
    pycurl.E_RECV_ERROR: "ReceiveError",
    pycurl.E_SSL_CONNECT_ERROR: "TLSError",
    pycurl.E_PEER_FAILED_VERIFICATION: "TLSCertificateError",
    pycurl.E_FTP_WEIRD_SERVER_REPLY: "ProtocolError",  # CURLE_WEIRD_SERVER_REPLY (8): its old name
    pycurl.E_URL_MALFORMAT: "InvalidURL",
}


@dataclass(slots=True)
class Response:
    status: int | None
    excerpt: str
    error: str
    duration_ms: int
    retry_after: float | None
    started: float = 0.0  # time.time() when the request was started


@dataclass(slots=True)
class Request:
    destination: Destination
    body: bytes
    headers: dict[str, str]


class _Transfer:
    """One easy handle and what its callbacks collect of the response."""

    __slots__ = ("curl", "excerpt", "received", "retry_after", "cut", "started", "index", "host", "together")

    def __init__(self, options: dict):
        self.curl = pycurl.Curl()
        for option, value in options.items():
            self.curl.setopt(option, value)
        self.curl.setopt(pycurl.WRITEFUNCTION, self._write)
        self.curl.setopt(pycurl.HEADERFUNCTION, self._header)
        self.curl.transfer = self  # found again from the handles info_read returns

    def start(self, request: Request, index: int) -> None:
        self.excerpt, self.received, self.retry_after, self.cut, self.index = b"", 0, None, False, index
        curl = self.curl
        url, connect_to = _target(request.destination)
        curl.setopt(pycurl.URL, url)
        curl.setopt(pycurl.CONNECT_TO, connect_to)
        curl.setopt(pycurl.POSTFIELDS, request.body)
        curl.setopt(pycurl.HTTPHEADER, [f"{name}: {value}" for name, value in request.headers.items()] + _HEADERS)
        self.started = time.time()

    def _write(self, chunk: bytes):
        if len(self.excerpt) < EXCERPT_BYTES:
            self.excerpt += chunk[: EXCERPT_BYTES - len(self.excerpt)]
        self.received += len(chunk)
        if self.received > DRAIN_LIMIT_BYTES:
            self.cut = True
            return 0  # stops the transfer; libcurl closes the connection
        return None

    def _header(self, line: bytes) -> None:
        if line[:5] == b"HTTP/":  # a new response (after a 1xx): forget the last one's headers
            self.retry_after = None
        elif line[:12].lower() == b"retry-after:":
            self.retry_after = _retry_after(line[12:].decode("latin-1").strip())

    def response(self, error: tuple[int, str] | None) -> Response:
        curl = self.curl
        status = curl.getinfo(pycurl.RESPONSE_CODE) or None
        duration_ms = int(curl.getinfo(pycurl.TOTAL_TIME) * 1000)
        if error is not None and not (self.cut and error[0] == pycurl.E_WRITE_ERROR):
            code, message = error
            text = f"{_ERROR_NAMES.get(code, 'CurlError')}: {message or code}"[:500]
            return Response(None, "", text, duration_ms, None, self.started)
        excerpt = self.excerpt.decode("utf-8", errors="replace")
        return Response(status, excerpt, "", duration_ms, self.retry_after, self.started)


_HEADERS = [
    "Content-Type: application/json",
    "User-Agent: platform-webhooks/1",
    "Expect:",  # no "100-continue" round trip before larger bodies
    "Accept:",
]


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@functools.lru_cache(maxsize=1024)
def _target(destination: Destination) -> tuple[str, list[str]]:
    """The URL (with the host name) and the CONNECT_TO entry that pins its connection to the checked address."""
    host, port = _bracketed(destination.host.encode("idna").decode("ascii")), destination.port
    url = f"{destination.scheme}://{host}:{port}{destination.target}"
    return url, [f"{host}:{port}:{_bracketed(destination.address)}:{port}"]


class PinnedClient:
    def __init__(self, *, pool_maxsize: int, connect_timeout: float, read_timeout: float, concurrency: int = 8):
        # The connect timeout, then a deadline for the whole attempt: connect + read, and never more than
        # 15 s in all, whatever the settings say.
        self.total_timeout = min(connect_timeout + read_timeout, MAX_ATTEMPT_SECONDS)
        self._concurrency = max(1, concurrency)
        self._pool_maxsize = pool_maxsize
        self._options = {
            pycurl.NOSIGNAL: 1,
            pycurl.FOLLOWLOCATION: 0,
            pycurl.PROXY: "",  # never a proxy from http_proxy / https_proxy
            pycurl.CONNECTTIMEOUT_MS: int(min(connect_timeout, self.total_timeout) * 1000),
            pycurl.TIMEOUT_MS: int(self.total_timeout * 1000),
            pycurl.PROTOCOLS: pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS,
            **_ca_options(),
        }
        self._pool: list[_Handles] = []  # idle multi handles, the last returned at the end
        self._pool_lock = threading.Lock()
        self._pool_pid = os.getpid()

    def _checkout(self) -> "_Handles":
        """A multi handle for one session: the one returned last (its connections the warmest), else a new one."""
        with self._pool_lock:
            if self._pool_pid != os.getpid():  # after a fork: the parent's connections are not this process's
                self._pool, self._pool_pid = [], os.getpid()
            if self._pool:
                return self._pool.pop()
        multi = pycurl.CurlMulti()
        multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, self._pool_maxsize)
        multi.setopt(pycurl.M_MAXCONNECTS, MAX_CONNECTIONS)
        return _Handles(multi, [], os.getpid())

    def _checkin(self, handles: "_Handles") -> None:
        with self._pool_lock:
            if handles.pid == self._pool_pid:
                self._pool.append(handles)

    def _state(self) -> tuple[pycurl.CurlMulti, list["_Transfer"]]:
        """The multi handle (and idle transfers) the next session takes."""
        handles = self._checkout()
        self._checkin(handles)
        return handles.multi, handles.idle

    def post(self, destination: Destination, *, body: bytes, headers: dict[str, str]) -> Response:
        return self.post_many([Request(destination, body, headers)])[0]

    def session(self) -> "Session":
        """Requests in flight on a multi handle of the pool, this session's alone until it is closed: start
        them one by one, collect them as they finish."""
        return Session(self._checkout(), self._options, self._checkin, self._pool_maxsize)

    def post_many(self, requests: list[Request]) -> list[Response]:
        """Send the requests, at most `concurrency` at a time; one Response each, in their order."""
        responses: list[Response | None] = [None] * len(requests)
        waiting = deque(enumerate(requests))
        with self.session() as session:
            while waiting or len(session):
                while waiting and len(session) < self._concurrency and session.room(waiting[0][1].destination) > 0:
                    session.add(*reversed(waiting.popleft()))
                for index, response in session.poll(1.0):
                    responses[index] = response
        return responses  # type: ignore[return-value]


@dataclass(slots=True)
class _Handles:
    """A multi handle, its idle easy handles (reused with their buffers) and the process that made them."""

    multi: pycurl.CurlMulti
    idle: list
    pid: int
    # Per (host, port): the most requests in flight at once that all got an answer, so as many connections.
    answered: Counter = field(default_factory=Counter)


class Session:
    """Requests in flight on one multi handle. `add` starts a request under a key of the caller's; `poll`
    waits (at most `timeout` seconds) and returns the (key, Response) of those that finished. The waits of
    every request overlap, so one worker slot holds many requests, slow ones among them."""

    def __init__(self, handles: "_Handles", options: dict, release, pool_maxsize: int):
        self._handles, self._release, self._pool_maxsize = handles, release, pool_maxsize
        self._multi, self._idle, self._options = handles.multi, handles.idle, options
        self._running: dict[_Transfer, object] = {}
        self._in_air: dict[tuple, list[_Transfer]] = {}  # per (host, port)

    def room(self, destination: Destination) -> int:
        """How many more requests to the destination's host may start now: the pool's size per host, ramped
        up from FIRST_CONNECTIONS while this handle has no connections there that answered."""
        host = (destination.host, destination.port)
        in_air = self._in_air.get(host, ())
        room = self._pool_maxsize - len(in_air)
        ramp = max(FIRST_CONNECTIONS, 2 * self._handles.answered[host])
        if ramp < self._pool_maxsize:
            since = time.time() - RAMP_WAIT_SECONDS
            room = min(room, ramp - sum(1 for transfer in in_air if transfer.started > since))
        return room

    def __len__(self) -> int:
        return len(self._running)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def add(self, request: Request, key: object) -> float:
        """Start a request; returns its start time (time.time())."""
        transfer = self._idle.pop() if self._idle else _Transfer(self._options)
        transfer.start(request, 0)
        self._multi.add_handle(transfer.curl)
        self._running[transfer] = key
        host = transfer.host = (request.destination.host, request.destination.port)
        in_air = self._in_air.setdefault(host, [])
        in_air.append(transfer)
        transfer.together = len(in_air)
        return transfer.started

    def poll(self, timeout: float) -> list[tuple[object, Response]]:
        multi, finished = self._multi, []
        deadline = time.monotonic() + timeout
        while self._running:
            _, active = multi.perform()
            if active < len(self._running):
                while True:
                    queued, succeeded, failed = multi.info_read()
                    for curl, error in [(curl, None) for curl in succeeded] + [(c, (n, m)) for c, n, m in failed]:
                        transfer = curl.transfer
                        multi.remove_handle(curl)
                        self._in_air[transfer.host].remove(transfer)
                        if error is None:  # its connection works (whatever the status): so many can be open
                            answered = self._handles.answered
                            answered[transfer.host] = max(answered[transfer.host], transfer.together)
                        finished.append((self._running.pop(transfer), transfer.response(error)))
                        self._idle.append(transfer)
                    if not queued:
                        break
            left = deadline - time.monotonic()
            if finished or left <= 0:
                break
            # Nothing finished: wait for the sockets (or libcurl's next timeout), never past the deadline.
            timeout_ms = multi.timeout()
            multi.select(min(left, timeout_ms / 1000 if 0 <= timeout_ms < 1000 else 1.0))
        return finished

    def close(self) -> None:
        """No transfer may stay in the multi handle, where the next session would read its outcome as its own
        (after an exception, a worker's shutdown). Returns the multi handle, its connections kept, to the pool."""
        for transfer in self._running:
            self._multi.remove_handle(transfer.curl)
            transfer.curl.close()
        self._running.clear()
        self._in_air.clear()
        if self._release is not None:
            release, self._release = self._release, None
            release(self._handles)


def _ca_options() -> dict:
    """Trust what Python's ssl trusts (the system's CA bundle) unless WEBHOOKS_CA_BUNDLE names a file."""
    bundle = settings.WEBHOOKS_CA_BUNDLE
    if bundle:
        return {pycurl.CAINFO: bundle}
    paths = ssl.get_default_verify_paths()
    if paths.cafile:
        return {pycurl.CAINFO: paths.cafile}
    return {pycurl.CAPATH: paths.capath} if paths.capath else {}


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


@process_singleton
def client() -> PinnedClient:
    """The process's client (its connections are the process's own, created on first use after a fork)."""
    return PinnedClient(
        pool_maxsize=settings.WEBHOOKS_POOL_MAXSIZE,
        connect_timeout=settings.WEBHOOKS_CONNECT_TIMEOUT,
        read_timeout=settings.WEBHOOKS_READ_TIMEOUT,
        concurrency=settings.WEBHOOKS_SEND_CONCURRENCY,
    )
