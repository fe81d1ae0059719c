"""Queueing webhook tasks on WEBHOOKS_QUEUE through the one task contract (core/enqueue.py): by reference,
broker errors logged and counted, the rows left for the sweeper."""

from django.conf import settings

from core.enqueue import enqueue_now


def enqueue(task, *args, countdown: float | None = None) -> bool:
    """Queue a webhooks task on WEBHOOKS_QUEUE; False if the broker refused it (the sweeper queues the work
    later: the rows are in the database)."""
    if countdown is not None and settings.CELERY_TASK_ALWAYS_EAGER:
        return True  # embedded mode runs tasks at once: a later attempt is the beat sweeper's
    return enqueue_now(task, *args, countdown=countdown, queue=settings.WEBHOOKS_QUEUE)
