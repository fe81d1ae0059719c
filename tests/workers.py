"""The one launcher of real Celery worker processes for tests (each fixture only says which queues, pool
and environment): started in a session of its own, ready when it answers a ping, killed as a group, and
killed by the kernel if the test run itself dies (a killed pytest must not leave workers consuming the
next run's queues)."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from tests.helpers import die_with_parent

REPO_ROOT = Path(__file__).resolve().parent.parent


def _answers(app, hostname: str) -> bool:
    import kombu.exceptions
    import redis.exceptions

    try:
        return bool(app.control.ping(destination=[hostname], timeout=0.5))
    except (redis.exceptions.ConnectionError, kombu.exceptions.OperationalError, OSError):
        # A pooled broker connection from before a test restarted Redis: drop it, ask again.
        app.pool.force_close_all()
        return False


class CeleryWorker:
    def __init__(
        self,
        env: dict,
        log_path: Path,
        *,
        queues: Iterable[str],
        hostname: str,
        concurrency: int = 2,
        pool: str | None = None,
    ):
        self.env = env
        self.log_path = log_path
        self.queues = list(queues)
        self.hostname = hostname
        self.concurrency = concurrency
        self.pool = pool
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "celery", "-A", "platform_site", "worker", "-Q", ",".join(self.queues),
            *(["-P", self.pool] if self.pool else []), "-c", str(self.concurrency), "-n", self.hostname,
            "--without-gossip", "--without-mingle", "-l", "INFO",
        ]  # fmt: skip

    def start(self, *, timeout: float = 30) -> None:
        """Start the worker and return once it answers a ping (~2 s); raise with its log if it does not."""
        from platform_site.celery import app

        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=die_with_parent,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker {self.hostname} exited: {self.log_path.read_text()[-2000:]}")
            if _answers(app, self.hostname):
                return
        self.kill()
        raise RuntimeError(
            f"celery worker {self.hostname} not ready in {timeout:.0f} s: {self.log_path.read_text()[-2000:]}"
        )

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), as a crash or OOM kill would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
