"""`./bin/run` behaves like the real thing: one state for every request, periodic work without a service.

The server is `./bin/run` itself, a subprocess on a free 127.0.0.1 port with a data folder of its own.
Keys are created, revoked and suspended by management commands in processes of their own, as an
operator would, and the API is driven over HTTP.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.helpers import die_with_parent, wait_for

# The server's environment is built from nothing but these, so no real-mode variable of the test
# run (the stack's DATABASE_URL, REDIS_URL, CDN_BACKENDS...) leaks into embedded mode.
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "LOGNAME")
ROLLUP_SECONDS = 2
HEARTBEAT_SECONDS = 3  # beat's heartbeat: every minute by default


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedServer:
    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "run.log"
        self.env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
        self.env |= {
            "PLATFORM_VAR_DIR": str(root / "var"),
            "PORT": str(self.port),
            "WEB_THREADS": "4",
            "USAGE_ROLLUP_INTERVAL_SECONDS": str(ROLLUP_SECONDS),
            "BEAT_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(REPO_ROOT / "bin" / "run")], cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=die_with_parent,
            )  # fmt: skip
        wait_for(lambda: self.process.poll() is not None or "Operator login" in self.log(), timeout=240, interval=0.5)
        assert self.process.poll() is None, self.log()[-3000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=self.env, capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, f"manage.py {' '.join(args)}: {result.stderr[-2000:]}"
        return result.stdout

    def create_key(self, tenant: str, *scopes: str) -> tuple[str, str]:
        scope_args = [arg for scope in scopes for arg in ("--scope", scope)]
        out = self.manage("apikey", "create", "--tenant", tenant, "--name", "e2e", *scope_args).splitlines()
        key_id = out[0].split("id=")[1].split()[0]
        return key_id, out[-1].strip()

    def get(self, path: str, key: str | None = None) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        request = urllib.request.Request(self.base + path, headers=headers)  # noqa: S310 - 127.0.0.1 only
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - 127.0.0.1 only
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = EmbeddedServer(tmp_path_factory.mktemp("embedded"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_the_operator_login_is_the_last_line_printed_and_no_broker_warning(server):
    lines = [line for line in server.log().splitlines() if line.strip()]
    login = next(index for index, line in enumerate(lines) if "Operator login: username=admin password=" in line)
    # After it, only the requests of the tests before this one (access log lines) and what periodic
    # tasks may log (nothing at start-up).
    after = [line for line in lines[login + 1 :] if '"GET ' not in line]
    assert after == [] or all(" INFO celery.app.trace Task " in line for line in after), after
    assert "No hostname was supplied" not in server.log()
    assert server.get("/healthz")[0] == 200


def test_landing_page_links_console_docs_and_status(server):
    status, body = server.get("/")
    assert status == 200
    page = body.decode()
    for link in ('href="/admin/"', 'href="/api/docs/"', 'href="/readyz"'):
        assert link in page


def test_a_key_revoked_by_the_command_is_refused_from_the_next_request(server):
    key_id, key = server.create_key("acme", "websites:read")
    assert [server.get("/api/v1/websites/", key)[0] for _ in range(5)] == [200] * 5
    server.manage("apikey", "revoke", key_id, "--reason", "leaked", "--yes")
    assert [server.get("/api/v1/websites/", key)[0] for _ in range(20)] == [401] * 20


def test_free_tier_gets_exactly_100_requests_a_minute(server):
    _, key = server.create_key("hobby", "websites:read")
    statuses = [server.get("/api/v1/websites/", key)[0] for _ in range(110)]
    assert statuses == [200] * 100 + [429] * 10


def test_usage_is_rolled_up_by_the_in_process_scheduler(server):
    _, key = server.create_key("acme", "websites:read", "usage:read")
    assert [server.get("/api/v1/websites/", key)[0] for _ in range(7)] == [200] * 7

    def requests_counted() -> int:
        status, body = server.get("/api/v1/usage/", key)
        assert status == 200, body
        return json.loads(body)["totals"]["requests"]

    # Nothing but the server's own scheduler rolls usage up (no worker, no beat).
    wait_for(lambda: requests_counted() >= 7, timeout=30, interval=ROLLUP_SECONDS / 2)
    listing = server.manage("apikey", "list", "--tenant", "acme")
    assert "last_used=-" not in next(line for line in listing.splitlines() if "usage:read" in line)


def test_a_tenant_suspended_by_the_command_is_refused_on_every_request(server):
    _, key = server.create_key("acme", "websites:read")
    assert server.get("/api/v1/websites/", key)[0] == 200
    server.manage("tenant", "suspend", "acme", "--reason", "abuse report", "--yes")
    assert [server.get("/api/v1/websites/", key)[0] for _ in range(30)] == [403] * 30
    server.manage("tenant", "reactivate", "acme", "--reason", "resolved")
    assert server.get("/api/v1/websites/", key)[0] == 200


def test_readyz_reports_the_in_process_scheduler(server):
    def beat() -> dict:
        status, body = server.get("/readyz")
        assert status == 200, body
        return json.loads(body)["checks"]["beat"]

    # The heartbeat entry runs every BEAT_HEARTBEAT_SECONDS, the first time that long after the server started.
    wait_for(lambda: beat()["last_seen_seconds_ago"] is not None, timeout=HEARTBEAT_SECONDS + 60, interval=0.5)
    assert beat()["last_seen_seconds_ago"] < HEARTBEAT_SECONDS + 10


def test_a_second_run_on_the_same_port_fails_first_and_leaves_the_server_alone(server, tmp_path):
    metrics = Path(server.env["PLATFORM_VAR_DIR"]) / "metrics" / "web"
    before = sorted(path.name for path in metrics.glob("*.db"))
    assert before
    started = time.monotonic()
    result = subprocess.run(
        [str(REPO_ROOT / "bin" / "run")], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        env=dict(server.env, PLATFORM_VAR_DIR=server.env["PLATFORM_VAR_DIR"]),
    )  # fmt: skip
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{server.port}" in result.stderr
    assert "migrat" not in result.stdout + result.stderr  # failed before any setup
    assert time.monotonic() - started < 10
    assert set(before) <= {path.name for path in metrics.glob("*.db")}
    assert server.get("/healthz")[0] == 200


def test_more_than_one_process_is_refused_in_embedded_mode(server):
    result = subprocess.run(
        [str(REPO_ROOT / "bin" / "run")], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        env=dict(server.env, PORT=str(free_port()), WEB_CONCURRENCY="2"),
    )  # fmt: skip
    assert result.returncode == 2
    assert "embedded mode serves from one process" in result.stderr
