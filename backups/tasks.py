"""Backup tasks: each takes ids or nothing, calls one service, and owns retries and final failure.

All run on the `backups` queue (platform_site.celery routes backups.tasks.*). A backup already running
(the lock) makes the task retry later instead of starting a second one. A scheduled backup goes to every
repository in turn: each succeeds or fails on its own, and a retry repeats only the failed ones.
"""

import logging

from celery import shared_task
from django.conf import settings

from . import services, tenant_exports
from .engines import get_engine
from .engines.base import BackupError
from .locking import BackupInProgress
from .models import Trigger

logger = logging.getLogger(__name__)

RETRY = {"max_retries": 3, "countdown": 300}


def scheduled_repos() -> list[int]:
    keys = [repository.key for repository in get_engine().repositories()]
    wanted = settings.BACKUP_SCHEDULE_REPOS or keys
    return [key for key in keys if key in wanted]


def _run_scheduled(task, kind: str, repos: list[int] | None) -> list[int]:
    """One backup per repository, one after the other (never two at once); each repository succeeds or
    fails on its own, and only the failed ones are retried."""
    failed, errors, done = [], [], []
    for repo in repos or scheduled_repos():
        try:
            done.append(services.backup_run(kind=kind, trigger=Trigger.SCHEDULE, repo=repo).pk)
        except (BackupInProgress, BackupError) as exc:
            failed.append(repo)
            errors.append(exc.message)
    if failed:
        if task.request.retries >= RETRY["max_retries"]:
            logger.error("backup %s failed after %s retries: %s", kind, task.request.retries, "; ".join(errors))
            raise BackupError(f"backup {kind} failed: " + "; ".join(errors))
        raise task.retry(kwargs={"repos": failed}, exc=BackupError("; ".join(errors)), **RETRY)
    return done


@shared_task(bind=True, acks_late=True)
def backup_full_task(self, repos: list[int] | None = None) -> list[int]:
    return _run_scheduled(self, "full", repos)


@shared_task(bind=True, acks_late=True)
def backup_incremental_task(self, repos: list[int] | None = None) -> list[int]:
    # The SQLite engine (embedded mode) makes full copies only: the schedule's incremental is not a failure.
    if not get_engine().supports_incremental:
        return []
    return _run_scheduled(self, "incr", repos)


@shared_task(bind=True, acks_late=True)
def backup_expire_task(self) -> list[str]:
    """Retention in every repository, each with its own policy; one failing does not stop the others."""
    try:
        outcomes = services.backup_expire()
    except BackupInProgress as exc:
        raise self.retry(exc=exc, **RETRY) from exc
    errors = [outcome.error for outcome in outcomes if outcome.error]
    if errors:
        raise BackupError("expire failed: " + "; ".join(errors))
    return [outcome.repository.label for outcome in outcomes]


@shared_task
def wal_archive_check_task() -> dict:
    if not get_engine().supports_wal_archiving:
        return {"ok": True, "skipped": "the backup engine archives no WAL (embedded mode)"}
    return services.wal_archive_check()


@shared_task
def backups_reconcile_task() -> dict:
    """Runs whose process is gone are failed with the reason; leaked scratch clusters are reaped."""
    return services.backups_reconcile()


@shared_task(bind=True, acks_late=True)
def tenant_export_task(self, trigger: str = Trigger.SCHEDULE) -> str:
    try:
        return str(tenant_exports.tenant_export_create(trigger=trigger).pk)
    except BackupError as exc:
        raise self.retry(exc=exc, **RETRY) from exc


@shared_task(bind=True, acks_late=True)
def restore_drill_task(self, backup_run_id: int | None = None, trigger: str = Trigger.SCHEDULE) -> int:
    from .models import BackupRun

    run = BackupRun.objects.filter(pk=backup_run_id).first() if backup_run_id else None
    return services.backup_verify(trigger=trigger, backup_run=run).pk


@shared_task(bind=True, acks_late=True)
def backup_on_demand_task(self, kind: str, trigger: str = Trigger.ADMIN, repo: int | None = None) -> int:
    """Admin's "run now": the same service, recorded with its trigger."""
    try:
        return services.backup_run(kind=kind, trigger=trigger, repo=repo).pk
    except BackupInProgress as exc:
        raise self.retry(exc=exc, **RETRY) from exc
