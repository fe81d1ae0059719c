"""gunicorn settings for the platform: `gunicorn -c platform_site/gunicorn.conf.py platform_site.wsgi`.

Metrics run in prometheus_client's multiprocess mode: every worker writes its counters to files in
PROMETHEUS_MULTIPROC_DIR and /metrics sums them, so one scrape sees the whole server whichever worker
answers it. The directory belongs to this one gunicorn master: it is emptied once the master holds its
listening sockets and the directory's lock (stale files from a previous run would be added to the new
counts; a second server started by mistake must fail, not wipe a running server's counters), and each
dead worker is marked so its live gauges disappear. Must be set before any worker imports
prometheus_client, hence here. (This file reads the environment itself: gunicorn loads it before
Django's settings exist.)

Embedded mode (no REDIS_URL or no CELERY_BROKER_URL) keeps its state in one process: the gateway's
in-memory store and the in-process scheduler. Such a server runs one worker (use threads for
concurrency: ./bin/run starts gthread workers) and refuses more.
"""

import fcntl
import os
import shutil
import sys
from pathlib import Path

_BASE_DIR = Path(__file__).resolve().parent.parent
_VAR_DIR = Path(os.environ.get("PLATFORM_VAR_DIR", _BASE_DIR / "var"))
MULTIPROC_DIR = Path(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(_VAR_DIR / "metrics" / "web")))
# Held by the master for its whole life; inside the directory (which may be a mount point) and kept
# when the directory is emptied. prometheus_client reads only *.db files.
MULTIPROC_LOCK_NAME = ".gunicorn-master.lock"
EMBEDDED = not (os.environ.get("REDIS_URL") and os.environ.get("CELERY_BROKER_URL"))

wsgi_app = "platform_site.wsgi:application"

_lock_file = None


def on_starting(server):
    if EMBEDDED and server.cfg.workers > 1:
        # Each worker would hold its own gateway store (a revoked key passing in the others, limits
        # multiplied) and its own scheduler.
        server.log.error(
            "embedded mode serves from one process: use --workers 1 with --threads N (WEB_THREADS for "
            "./bin/run), or set REDIS_URL and CELERY_BROKER_URL for more processes"
        )
        sys.exit(2)


def when_ready(server):
    # Runs once the listening sockets are bound: a port already in use has stopped the start before this.
    global _lock_file
    MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
    _lock_file = open(MULTIPROC_DIR / MULTIPROC_LOCK_NAME, "a+")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(_lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        server.log.error(
            "metrics: %s belongs to another running server; give this one its own PROMETHEUS_MULTIPROC_DIR",
            MULTIPROC_DIR,
        )
        sys.exit(2)
    # Stale counters of a previous master would be summed into this one's. The folder is emptied, not
    # removed: it may be a mount point (a tmpfs in compose, an emptyDir in Kubernetes).
    for entry in MULTIPROC_DIR.iterdir():
        if entry.name == MULTIPROC_LOCK_NAME:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    server.log.info("metrics: multiprocess dir %s emptied", MULTIPROC_DIR)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    from django.conf import settings

    from observability.metrics import set_web_worker_alive

    set_web_worker_alive()
    if settings.EMBEDDED_SCHEDULER:
        from platform_site.embedded import start_scheduler

        start_scheduler()
    # ./bin/run's closing lines (addresses, operator login), printed once the server answers.
    message = os.environ.get("PLATFORM_READY_MESSAGE")
    if message:
        sys.stdout.write(message.rstrip("\n") + "\n")
        sys.stdout.flush()
