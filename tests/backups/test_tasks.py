"""Schedules and task behaviour: every backup schedule on the backups queue; a held lock means retry."""

import pytest
from celery.exceptions import Retry

from backups import tasks
from backups.locking import BACKUP_LOCK_KEY
from backups.models import BackupRun
from platform_site.celery import app

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_backup_schedule_is_defined_and_routed_to_the_backups_queue():
    schedule = app.conf.beat_schedule
    expected = {
        "backup-full-daily": "backups.tasks.backup_full_task",
        "backup-incremental-6h": "backups.tasks.backup_incremental_task",
        "backup-wal-archive-check": "backups.tasks.wal_archive_check_task",
        "backup-expire-daily": "backups.tasks.backup_expire_task",
        "backup-tenant-export-daily": "backups.tasks.tenant_export_task",
        "backup-restore-drill-weekly": "backups.tasks.restore_drill_task",
        "backup-reconcile": "backups.tasks.backups_reconcile_task",
    }
    for name, task in expected.items():
        assert schedule[name]["task"] == task
        assert app.amqp.router.route({}, task)["queue"].name == "backups"
        assert task in app.tasks
    full = schedule["backup-full-daily"]["schedule"]
    assert full.hour == {2} and full.minute == {0}
    assert schedule["backup-incremental-6h"]["schedule"].hour == {0, 6, 12, 18}
    assert schedule["backup-restore-drill-weekly"]["schedule"].day_of_week == {0}
    # A repository's outage is reported within two minutes: the check runs every minute, and a copy
    # stuck behind a long backup expires instead of piling up.
    for name in ("backup-wal-archive-check", "backup-reconcile"):
        assert schedule[name]["schedule"] == 60.0 and schedule[name]["options"]["expires"] < 60


def test_backup_task_retries_while_another_backup_holds_the_lock(raw_connection):
    with raw_connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [BACKUP_LOCK_KEY])
    try:
        # Eager apply propagates (CELERY_TASK_EAGER_PROPAGATES): a worker would re-queue it in 300 s.
        with pytest.raises(Retry, match="Another backup is running"):
            tasks.backup_full_task.apply(kwargs={"repos": [1]})
    finally:
        with raw_connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [BACKUP_LOCK_KEY])
    assert not BackupRun.objects.exists()


def test_a_scheduled_backup_goes_to_every_repository_in_turn(celery_worker, settings):
    from tests.helpers import wait_for

    assert tasks.scheduled_repos() == [1, 2]
    settings.BACKUP_SCHEDULE_REPOS = [2]
    assert tasks.scheduled_repos() == [2]
    settings.BACKUP_SCHEDULE_REPOS = []
    tasks.backup_full_task.delay()
    runs = wait_for(lambda: len(done := list(BackupRun.objects.filter(status="succeeded"))) == 2 and done, timeout=180)
    assert sorted((run.repo, run.kind, run.trigger) for run in runs) == [
        (1, "full", "schedule"),
        (2, "full", "schedule"),
    ]
