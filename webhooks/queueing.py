"""Queueing webhook tasks after commit, by reference; a broker that is down loses nothing (the sweeper)."""

import logging

from celery.exceptions import CeleryError
from django.conf import settings
from kombu.exceptions import OperationalError as BrokerError

logger = logging.getLogger(__name__)


def enqueue(task, *args, countdown: float | None = None) -> bool:
    """Queue a webhooks task on WEBHOOKS_QUEUE; if the broker is down, log it and let the sweeper queue it
    later (the rows are in the database). Only broker errors are caught: anything else is a bug."""
    if countdown is not None and settings.CELERY_TASK_ALWAYS_EAGER:
        return True  # embedded mode runs tasks at once: a later attempt is the beat sweeper's
    try:
        task.apply_async(args, queue=settings.WEBHOOKS_QUEUE, countdown=countdown, retry=False)
    except (BrokerError, CeleryError) as exc:  # kombu wraps the transport's connection errors
        about = args[0] if args else "pending work"
        logger.warning("could not queue %s for %s (%s); the sweeper will retry", task.name, about, type(exc).__name__)
        return False
    return True
