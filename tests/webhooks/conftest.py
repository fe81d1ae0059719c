"""Real HTTP receivers on 127.0.0.1 and a real Celery worker on a webhooks queue of its own.

The worker consumes a queue named for this test run, so a worker started by another app's tests (which
consumes the default `webhooks` queue with default settings) never takes these deliveries.
"""

import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.workers import CeleryWorker

REPO_ROOT = Path(__file__).resolve().parents[2]
QUEUE = f"webhooks-test-{os.getpid()}"

# Compressed schedule (4 attempts within ~1 s), short timeouts, receivers on loopback allowed.
WEBHOOKS_TEST_ENV = {
    "WEBHOOKS_QUEUE": QUEUE,
    "WEBHOOKS_ALLOW_HTTP": "true",
    "WEBHOOKS_ALLOWED_NETWORKS": "127.0.0.0/8",
    "WEBHOOKS_RETRY_SCHEDULE": "0,0.2,0.3,0.4",
    "WEBHOOKS_RETRY_JITTER": "0.1",
    "WEBHOOKS_CONNECT_TIMEOUT": "1",
    "WEBHOOKS_READ_TIMEOUT": "3",
    "WEBHOOKS_REQUEUE_AFTER_SECONDS": "1",
    # A killed worker's attempts are lost after 3 s; breakers open after more failures in a row than the
    # schedule has attempts (so a single delivery's retries never open one), and probe after 1 s.
    "WEBHOOKS_LEASE_SECONDS": "3",
    "WEBHOOKS_BREAKER_THRESHOLD": "6",
    "WEBHOOKS_BREAKER_COOLDOWN_SECONDS": "1",
}


@pytest.fixture(autouse=True)
def webhooks_settings(settings):
    """The same configuration in the test process as in the worker."""
    settings.WEBHOOKS_QUEUE = QUEUE
    settings.WEBHOOKS_ALLOW_HTTP = True
    settings.WEBHOOKS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.WEBHOOKS_RETRY_SCHEDULE = [0, 0.2, 0.3, 0.4]
    settings.WEBHOOKS_RETRY_JITTER = 0.1
    settings.WEBHOOKS_CONNECT_TIMEOUT = 1
    settings.WEBHOOKS_READ_TIMEOUT = 3
    settings.WEBHOOKS_REQUEUE_AFTER_SECONDS = 1
    settings.WEBHOOKS_LEASE_SECONDS = 3
    settings.WEBHOOKS_BREAKER_THRESHOLD = 6
    settings.WEBHOOKS_BREAKER_COOLDOWN_SECONDS = 1
    return settings


# --- receivers ------------------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    at: float
    client_port: int


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1. `script` maps a path to a list of behaviours, one per request
    (the last repeats): ("ok",), ("status", 500), ("retry_after", 429, "1"), ("slow", seconds),
    ("drop",), ("redirect", location), ("hang",) (blocks until released, or 10 s, or the given seconds: ("hang", 30)),
    ("body", bytes) (200 with that body)."""

    server: ThreadingHTTPServer
    requests: list = field(default_factory=list)
    script: dict = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def received(self, path: str | None = None) -> list[Received]:
        return [r for r in list(self.requests) if path is None or r.path == path]

    def events(self, path: str | None = None) -> list[dict]:
        return [json.loads(r.body) for r in self.received(path)]


def _handler(receiver_ref: list):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real receivers

        def log_message(self, *args):
            pass

        def do_POST(self):
            receiver: Receiver = receiver_ref[0]
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            count = len(receiver.received(self.path))
            receiver.requests.append(
                Received(self.path, dict(self.headers), body, time.monotonic(), self.client_address[1])
            )
            steps = receiver.script.get(self.path, [("ok",)])
            step = steps[min(count, len(steps) - 1)]
            kind = step[0]
            if kind == "drop":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if kind == "hang":
                receiver.release.wait(step[1] if len(step) > 1 else 10)
                step = ("ok",)
            if kind == "slow":
                time.sleep(step[1])
            if kind == "redirect":
                self.send_response(302)
                self.send_header("Location", step[1])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = {"status": lambda: step[1], "retry_after": lambda: step[1]}.get(kind, lambda: 200)()
            payload = b'{"received": true}' if status < 300 else b"x" * 3000  # long bodies get cut to 1 KB
            if kind == "body":
                status, payload = 200, step[1]
            self.send_response(status)
            if kind == "retry_after":
                self.send_header("Retry-After", step[2])
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


class _Server(ThreadingHTTPServer):
    # A real server's listen backlog: the default 5 drops connections when many arrive at once on a loaded
    # machine, and the client sees a connect time-out that no receiver would cause.
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # A sender that gave up on a slow or hanging step hung up before its answer: what those steps are for.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _serve_receiver():
    ref: list = []
    server = _Server(("127.0.0.1", 0), _handler(ref))
    server.daemon_threads = True
    ref.append(Receiver(server=server))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return ref[0]


def _stop_receiver(receiver: Receiver) -> None:
    receiver.release.set()
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def receiver():
    served = _serve_receiver()
    yield served
    _stop_receiver(served)


@pytest.fixture
def other_receiver():
    """A second receiver (its own port, so its own connections): another tenant's, in fairness tests."""
    served = _serve_receiver()
    yield served
    _stop_receiver(served)


# --- a real worker on the test queue ----------------------------------------------------------------


def WorkerHandle(  # noqa: N802 - reads as the class it builds
    env: dict, log_path: Path, pool: str = "threads", concurrency: int = 4, name: str = "webhooks-test"
) -> CeleryWorker:
    """A worker on the webhooks test queue, by default with the pool the deployment runs webhooks workers
    with (threads; deploy/compose, deploy/k8s); the README's worker is prefork with 2 processes."""
    return CeleryWorker(env, log_path, queues=[QUEUE], hostname=f"{name}-{os.getpid()}@localhost",
                        concurrency=concurrency, pool=pool)  # fmt: skip


@pytest.fixture(scope="session")
def webhooks_worker(test_database_env, tmp_path_factory):
    env = {**test_database_env, **WEBHOOKS_TEST_ENV}
    worker = WorkerHandle(env, tmp_path_factory.mktemp("webhooks-worker") / "worker.log")
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def readme_worker(webhooks_worker, test_database_env, tmp_path):
    """The README's worker layout (one worker, 2 processes) on the test queue, instead of the session's, with
    the production time-out of an attempt (15 s in all)."""
    webhooks_worker.stop()
    env = {**test_database_env, **WEBHOOKS_TEST_ENV, "WEBHOOKS_READ_TIMEOUT": "14"}
    worker = WorkerHandle(env, tmp_path / "readme-worker.log", pool="prefork", concurrency=2, name="readme")
    worker.start()
    yield worker
    worker.stop()
    webhooks_worker.start()
