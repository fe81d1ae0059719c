"""platform_site/embedded.py: the beat schedule run by a thread of the web process (embedded mode)."""

import threading
import time

import pytest
from celery import shared_task
from django.core.cache import cache

from observability.tasks import BEAT_HEARTBEAT_KEY
from platform_site.celery import app
from platform_site.embedded import InProcessScheduler, scheduler_loop
from tests.helpers import wait_for

runs: list[str] = []


@shared_task(name="tests.platform_site.failing_periodic_task")
def failing_periodic_task():
    runs.append("failed")
    raise RuntimeError("a broken periodic task")


SCHEDULE = {
    "heartbeat": {"task": "observability.tasks.beat_heartbeat", "schedule": 0.2},
    "broken": {"task": "tests.platform_site.failing_periodic_task", "schedule": 0.2},
}


@pytest.fixture
def fast_schedule():
    runs.clear()
    cache.delete(BEAT_HEARTBEAT_KEY)


def test_due_tasks_run_in_the_thread_and_a_failing_one_stops_nothing(fast_schedule):
    stop = threading.Event()
    thread = threading.Thread(
        target=scheduler_loop, args=(stop,), kwargs={"max_interval": 0.1, "entries": SCHEDULE}, daemon=True
    )
    thread.start()
    try:
        wait_for(lambda: cache.get(BEAT_HEARTBEAT_KEY) is not None and len(runs) >= 3, timeout=15)
        first = cache.get(BEAT_HEARTBEAT_KEY)
        # The failing entry kept running on its schedule, and so did the heartbeat after it.
        wait_for(lambda: cache.get(BEAT_HEARTBEAT_KEY) > first, timeout=5)
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert time.time() - cache.get(BEAT_HEARTBEAT_KEY) < 10


def test_the_scheduler_sends_nothing_to_a_broker(fast_schedule):
    scheduler = InProcessScheduler(app, entries=SCHEDULE)
    assert scheduler.producer is None
    assert set(scheduler.schedule) == {"heartbeat", "broken"}  # no backend_cleanup: no results are stored
    # By default, the platform's one schedule (platform_site/celery.py).
    assert set(InProcessScheduler(app).schedule) == set(app.conf.beat_schedule)
