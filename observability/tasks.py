import time

from celery import shared_task
from django.core.cache import cache

BEAT_HEARTBEAT_KEY = "platform:beat:last_seen"


@shared_task
def beat_heartbeat() -> float:
    """Records that beat is scheduling; /readyz reports its age."""
    now = time.time()
    cache.set(BEAT_HEARTBEAT_KEY, now, timeout=None)
    return now
