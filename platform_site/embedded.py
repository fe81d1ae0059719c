"""Embedded mode's scheduler: Celery beat's own schedule, run by a thread of the web process.

Embedded mode has no broker, no worker and no beat process; tasks queued by the code already run eagerly
(`CELERY_TASK_ALWAYS_EAGER`). Periodic work (usage roll-up, webhook retries, sweeps, SQLite backups) is
due all the same, so the one web process runs `app.conf.beat_schedule` itself: celery's `Scheduler`
decides what is due exactly as `celery beat` would, and each due task runs here, in this thread, instead
of being sent to a broker. It lives in the web process because that process holds embedded mode's state
(the gateway's in-memory counters that the usage roll-up reads).
"""

import logging
import threading

from celery import beat

logger = logging.getLogger(__name__)

_thread: threading.Thread | None = None
_stop = threading.Event()


class InProcessScheduler(beat.Scheduler):
    """Celery's scheduler, applying each due entry in this process instead of sending it."""

    # Nothing is sent, so no broker connection is made (tick() passes this to apply_entry).
    producer = None

    def __init__(self, app, *, entries: dict | None = None, **kwargs):
        self.entries = app.conf.beat_schedule if entries is None else entries
        super().__init__(app, **kwargs)

    def setup_schedule(self):
        # The platform's schedule only: celery.backend_cleanup expires stored results, and embedded mode
        # stores none.
        self.merge_inplace(self.entries)

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        entry = self.reserve(entry) if advance else entry
        task = self.app.tasks[entry.task]
        # apply() runs the task here with its signals (connections are retired around it, as in a worker);
        # an exception is logged by Scheduler.apply_entry and the next run comes at its usual time.
        return task.apply(entry.args, entry.kwargs)


def scheduler_loop(stop: threading.Event, *, max_interval: float = 5.0, entries: dict | None = None) -> None:
    from .celery import app

    # "Sending due task" for every run would drown the server's log; failures are still logged.
    logging.getLogger("celery.beat").setLevel(logging.WARNING)
    # As a worker does at start: import every app's tasks module (autodiscovery is lazy).
    app.loader.import_default_modules()
    scheduler = InProcessScheduler(app, entries=entries, max_interval=max_interval)
    logger.debug("embedded scheduler: %d periodic tasks", len(scheduler.schedule))
    while not stop.is_set():
        try:
            delay = scheduler.tick()
        except Exception:  # a broken entry must not stop every other schedule
            logger.exception("embedded scheduler: tick failed")
            delay = max_interval
        if delay:
            stop.wait(delay)


def start_scheduler() -> threading.Thread:
    """Start the scheduler thread once per process (gunicorn's post_worker_init calls this)."""
    global _thread
    if _thread is None or not _thread.is_alive():
        _stop.clear()
        _thread = threading.Thread(target=scheduler_loop, args=(_stop,), name="embedded-scheduler", daemon=True)
        _thread.start()
    return _thread


def stop_scheduler(timeout: float = 5.0) -> None:
    _stop.set()
    if _thread is not None:
        _thread.join(timeout)


def scheduler_running() -> bool:
    return _thread is not None and _thread.is_alive()
