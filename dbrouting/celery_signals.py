"""Read-your-writes for Celery: a task published for a client carries the WAL position its reads must see.

Cross-cutting infrastructure, so it hooks Celery's signals rather than every task: the publisher's
position travels in message headers (before_task_publish) and the worker opens a routing context with
it around the task (task_prerun / task_postrun).
"""

import logging

from celery import signals
from django.db import DatabaseError

from . import routing

logger = logging.getLogger(__name__)

_tokens: dict[str, object] = {}


def add_position_headers(headers: dict | None = None, **kwargs) -> None:
    if headers is None:
        return
    state = routing.current_state()
    identities = state.identities()
    required = 0
    if state.wrote:
        # Tasks are published after commit, so the primary's position now covers the publisher's writes.
        try:
            required = routing.primary_lsn()
        except DatabaseError:
            logger.warning("could not read the primary's WAL position for a task; it will read from the primary")
            required = None
    else:
        required = state.required_lsn()
    if required is None:
        # Unknown position: the task reads from the primary (a position no replica has replayed).
        required = 2**63 - 1
    if required:
        headers[routing.TASK_LSN_HEADER] = str(required)
    if identities:
        headers[routing.TASK_CLIENTS_HEADER] = list(identities)


def _header(task, name):
    request = task.request
    value = getattr(request, name, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(name)
    return value


def open_task_context(task_id=None, task=None, **kwargs) -> None:
    min_lsn = int(_header(task, routing.TASK_LSN_HEADER) or 0)
    client_ids = tuple(_header(task, routing.TASK_CLIENTS_HEADER) or ())
    _tokens[task_id] = routing.begin(client_ids=client_ids, min_lsn=min_lsn)


def close_task_context(task_id=None, **kwargs) -> None:
    token = _tokens.pop(task_id, None)
    if token is None:
        return
    state = routing.current_state()
    try:
        if state.wrote and state.client_ids:
            # What a task did for a client is visible to that client's next reads too.
            routing.record_client_write(state.client_ids)
    except DatabaseError:
        logger.warning("could not record the WAL position after a task's write")
    finally:
        routing.end(token)


def start_monitor(**kwargs) -> None:
    # Poll from the start, so a worker's first tasks can already use replicas.
    from .monitor import get_monitor

    get_monitor().snapshot()


def connect() -> None:
    signals.worker_process_init.connect(start_monitor, dispatch_uid="platform-db-monitor-start")
    signals.before_task_publish.connect(add_position_headers, dispatch_uid="platform-db-lsn-publish")
    signals.task_prerun.connect(open_task_context, dispatch_uid="platform-db-lsn-prerun")
    signals.task_postrun.connect(close_task_context, dispatch_uid="platform-db-lsn-postrun")
