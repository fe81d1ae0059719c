"""Metrics of Celery workers: task outcomes, and a /metrics listener per worker host.

A worker started with CELERY_METRICS_PORT serves /metrics on CELERY_METRICS_ADDRESS (127.0.0.1 unless
set), summing its prefork children through prometheus_client's multiprocess mode: PROMETHEUS_MULTIPROC_DIR
must then be set in the worker's environment (its own directory, not the web's), is emptied when the
worker starts and each child marks itself dead when it exits. In real mode the listener requires the
same bearer token as the web's /metrics (METRICS_TOKEN).
"""

import logging
import os
import threading
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

from celery import signals

from .multiprocess import multiprocess_dir

logger = logging.getLogger(__name__)


def _metrics_wsgi_app(token: str):
    from prometheus_client import make_wsgi_app

    from .endpoint import process_metrics_registry, token_allows

    app = make_wsgi_app(process_metrics_registry())

    def guarded(environ, start_response):
        if token and not token_allows(environ.get("HTTP_AUTHORIZATION", ""), token):
            start_response("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")])
            return [b"a valid metrics bearer token is required\n"]
        return app(environ, start_response)

    return guarded


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - scrapes every few seconds would flood the log
        pass


def _ensure_multiprocess_dir() -> None:
    # Metrics without labels write their file as soon as they are defined, at Django's setup, which
    # comes before any worker signal: the directory must exist by then.
    directory = multiprocess_dir()
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)


_ensure_multiprocess_dir()


@signals.worker_init.connect
def _prepare_multiprocess_dir(**kwargs):
    from django.conf import settings

    directory = multiprocess_dir()
    if not settings.CELERY_METRICS_PORT:
        return
    if not directory:
        raise RuntimeError("CELERY_METRICS_PORT needs PROMETHEUS_MULTIPROC_DIR (a directory of the worker's own)")
    # Before the pool forks: stale counters of a previous run would be added to this one's. This
    # process's own files (created at setup) stay.
    own = f"_{os.getpid()}.db"
    for path in Path(directory).glob("*.db"):
        if not path.name.endswith(own):
            path.unlink(missing_ok=True)


@signals.worker_ready.connect
def _serve_metrics(**kwargs):
    from django.conf import settings

    port = settings.CELERY_METRICS_PORT
    if not port:
        return

    token = settings.METRICS_TOKEN
    if settings.REAL_MODE and not token:
        logger.error("metrics listener not started: METRICS_TOKEN is required in real mode")
        return
    from prometheus_client.exposition import ThreadingWSGIServer

    address = settings.CELERY_METRICS_ADDRESS
    server = make_server(address, int(port), _metrics_wsgi_app(token), ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics-listener", daemon=True).start()
    logger.info("metrics: serving worker metrics on %s:%s", address, port)


@signals.worker_process_init.connect
def _child_alive(**kwargs):
    from .metrics import set_celery_process_alive

    set_celery_process_alive()


# Pools whose processes send worker_process_init themselves (the prefork children, and solo's one process).
_POOLS_SIGNALLING_PROCESS_INIT = {"celery.concurrency.prefork", "celery.concurrency.solo"}


@signals.worker_ready.connect
def _worker_alive(sender=None, **kwargs):
    """A threads pool (the webhooks workers) runs tasks in the worker's own process: count it when ready."""
    pool = getattr(sender, "pool", None)
    if pool is not None and type(pool).__module__ not in _POOLS_SIGNALLING_PROCESS_INIT:
        from .metrics import set_celery_process_alive

        set_celery_process_alive()


@signals.worker_process_shutdown.connect
def _mark_child_dead(pid=None, **kwargs):
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())


def _task_name(sender) -> str:
    return getattr(sender, "name", None) or "unknown"


@signals.task_success.connect
def _task_succeeded(sender=None, **kwargs):
    from .metrics import record_celery_task

    record_celery_task(task=_task_name(sender), outcome="succeeded")


@signals.task_failure.connect
def _task_failed(sender=None, **kwargs):
    from .metrics import record_celery_task

    record_celery_task(task=_task_name(sender), outcome="failed")


@signals.task_retry.connect
def _task_retried(sender=None, **kwargs):
    from .metrics import record_celery_task

    record_celery_task(task=_task_name(sender), outcome="retried")
