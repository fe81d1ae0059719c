"""gunicorn settings for the platform: `gunicorn -c platform_site/gunicorn.conf.py platform_site.wsgi`.

Metrics run in prometheus_client's multiprocess mode: every worker writes its counters to files in
PROMETHEUS_MULTIPROC_DIR and /metrics sums them, so one scrape sees the whole server whichever worker
answers it. The directory belongs to this one gunicorn master: it is emptied when the master starts
(stale files from a previous run would be added to the new counts) and each dead worker is marked so
its live gauges disappear. Must be set before any worker imports prometheus_client, hence here.
"""

import os
import shutil
from pathlib import Path

_BASE_DIR = Path(__file__).resolve().parent.parent
_VAR_DIR = Path(os.environ.get("PLATFORM_VAR_DIR", _BASE_DIR / "var"))
MULTIPROC_DIR = Path(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(_VAR_DIR / "metrics" / "web")))

wsgi_app = "platform_site.wsgi:application"


def on_starting(server):
    # Stale counters of a previous master would be summed into this one's. The folder is emptied, not
    # removed: it may be a mount point (a tmpfs in compose, an emptyDir in Kubernetes).
    MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
    for entry in MULTIPROC_DIR.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    server.log.info("metrics: multiprocess dir %s emptied", MULTIPROC_DIR)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    from observability.metrics import set_web_worker_alive

    set_web_worker_alive()
