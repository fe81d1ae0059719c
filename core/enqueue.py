"""The one way to queue a Celery task: by reference, after the current transaction commits.

Only broker errors are caught (kombu's OperationalError: the broker is down or unreachable): they are
logged with their type and counted in `platform_task_enqueue_failures_total{task}`, and the row the task
would have worked on stays as it is, for its sweeper (a beat task) to queue again. Anything else (a
misspelt argument, a bug) raises as usual.
"""

import logging
from collections.abc import Sequence

from celery import Task
from django.db import transaction
from kombu.exceptions import OperationalError as BrokerError

from observability import metrics

logger = logging.getLogger(__name__)

BROKER_ERRORS = (BrokerError,)


def enqueue_now(task: Task, *args, countdown: float | None = None, queue: str | None = None) -> bool:
    """Queue task(*args) now; False when the broker refused it (logged and counted)."""
    options = {"retry": False}
    if countdown is not None:
        options["countdown"] = countdown
    if queue is not None:
        options["queue"] = queue
    try:
        task.apply_async(args, **options)
    except BROKER_ERRORS as exc:
        logger.warning("could not queue %s (%s); its sweeper queues it again", task.name, type(exc).__name__)
        metrics.record_task_enqueue_failure(task=task.name)
        return False
    return True


def enqueue_on_commit(
    task: Task, *args, countdown: float | None = None, queue: str | None = None, using: str | None = None
) -> None:
    """Queue task(*args) once the current transaction commits (at once outside a transaction); nothing
    is queued for a rolled-back write."""
    transaction.on_commit(lambda: enqueue_now(task, *args, countdown=countdown, queue=queue), using=using)


def enqueue_many(task: Task, arguments: Sequence[tuple]) -> int:
    """Queue one task per argument tuple now (sweepers); stops at the first broker error, since the rest
    would fail the same way. Returns how many were queued."""
    queued = 0
    for args in arguments:
        if not enqueue_now(task, *args):
            break
        queued += 1
    return queued
