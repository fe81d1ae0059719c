"""Backup tasks: each takes ids or nothing, calls one service, and owns retries and final failure.

All run on the `backups` queue (platform_site.celery routes backups.tasks.*). A backup already running
(the lock) makes the task retry later instead of starting a second one.
"""

import logging

from celery import shared_task

from . import services
from .engines.base import BackupError
from .locking import BackupInProgress
from .models import Trigger

logger = logging.getLogger(__name__)

RETRY = {"max_retries": 3, "countdown": 300}


def _run_backup(task, kind: str) -> int:
    try:
        return services.backup_run(kind=kind, trigger=Trigger.SCHEDULE).pk
    except BackupInProgress as exc:
        raise task.retry(exc=exc, **RETRY) from exc
    except BackupError as exc:
        if task.request.retries >= RETRY["max_retries"]:
            logger.error("backup %s failed after %s retries: %s", kind, task.request.retries, exc.message)
            raise
        raise task.retry(exc=exc, **RETRY) from exc


@shared_task(bind=True, acks_late=True)
def backup_full(self) -> int:
    return _run_backup(self, "full")


@shared_task(bind=True, acks_late=True)
def backup_incremental(self) -> int:
    return _run_backup(self, "incr")


@shared_task(bind=True, acks_late=True)
def backup_expire(self) -> str:
    try:
        return services.backup_expire()
    except BackupInProgress as exc:
        raise self.retry(exc=exc, **RETRY) from exc


@shared_task
def wal_archive_check() -> dict:
    return services.wal_archive_check()


@shared_task(bind=True, acks_late=True)
def tenant_export(self, trigger: str = Trigger.SCHEDULE) -> str:
    try:
        return str(services.tenant_export_create(trigger=trigger).pk)
    except BackupError as exc:
        raise self.retry(exc=exc, **RETRY) from exc


@shared_task(bind=True, acks_late=True)
def restore_drill(self, backup_run_id: int | None = None) -> int:
    from .models import BackupRun

    run = BackupRun.objects.filter(pk=backup_run_id).first() if backup_run_id else None
    return services.backup_verify(trigger=Trigger.SCHEDULE, backup_run=run).pk


@shared_task(bind=True, acks_late=True)
def backup_on_demand(self, kind: str, trigger: str = Trigger.ADMIN) -> int:
    """Admin's "run now": the same service, recorded with its trigger."""
    try:
        return services.backup_run(kind=kind, trigger=trigger).pk
    except BackupInProgress as exc:
        raise self.retry(exc=exc, **RETRY) from exc
