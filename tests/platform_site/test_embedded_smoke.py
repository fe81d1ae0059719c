"""README command (a): the platform starts on embedded defaults and serves health, schema and admin."""

import os
import signal
import socket
import subprocess
import urllib.request

from tests.conftest import REPO_ROOT
from tests.helpers import die_with_parent, wait_for
from tests.platform_site.test_settings import REAL_VARIABLES


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - 127.0.0.1 only
            return response.status, response.read()
    except OSError:
        return 0, b""


def test_run_command_serves_embedded_platform(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in REAL_VARIABLES}
    env.update({"PLATFORM_VAR_DIR": str(tmp_path / "var"), "PORT": str(port), "HOST": "127.0.0.1"})
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log_path = tmp_path / "run.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(REPO_ROOT / "bin" / "run")],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: process.poll() is not None or _get(f"{base}/healthz")[0] == 200, timeout=180, interval=0.5)
        assert process.poll() is None, log_path.read_text()[-3000:]
        status, body = _get(f"{base}/api/schema/")
        assert status == 200 and b"openapi" in body
        status, body = _get(f"{base}/admin/login/")
        assert status == 200
        # The console's theme stylesheet, versioned and served (collectstatic ran, whitenoise serves it).
        css = body.decode().split('href="/static/unfold/css/styles.')[1].split('"')[0]
        assert _get(f"{base}/static/unfold/css/styles.{css}")[0] == 200
        status, body = _get(f"{base}/readyz")
        assert status == 200 and b'"database"' in body
        output = log_path.read_text()
        assert "Operator login: username=admin password=" in output
        assert "demo tenant 'acme' (professional) created" in output
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
