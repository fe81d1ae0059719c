"""The Celery app and every periodic schedule, visible in one read."""

import os

from celery import Celery
from celery.schedules import crontab
from celery.signals import task_postrun, task_prerun
from django.conf import settings
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings")

app = Celery("platform_site")
app.config_from_object("django.conf:settings", namespace="CELERY")

QUEUES = ("default", "webhooks", "cdn", "backups")

app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    # At-least-once: a task is acknowledged after it ran, and re-queued if its worker dies.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_queues=[Queue(name) for name in QUEUES],
    task_default_queue="default",
    # Each app's tasks run on its own queue so a backlog of one cannot starve another.
    task_routes={
        "webhooks.tasks.*": {"queue": "webhooks"},
        "cdn.tasks.*": {"queue": "cdn"},
        "backups.tasks.*": {"queue": "backups"},
    },
    broker_transport_options={"visibility_timeout": 3600},
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
    timezone="UTC",
    enable_utc=True,
)

# Celery's Django fix-up closes the database connection around every task unless told to reuse it; a
# new PostgreSQL connection per task cost ~50 ms and capped webhook delivery at ~40/s on 2 cores.
# Reused connections are then retired the way Django's request cycle does it (below).
app.conf.CELERY_DB_REUSE_MAX = 1000


@task_prerun.connect
@task_postrun.connect
def _retire_unusable_connections(**kwargs) -> None:
    """Around every task, as around every request: drop connections past CONN_MAX_AGE or broken (e.g. by a
    primary restart), and re-arm CONN_HEALTH_CHECKS, so a reused connection is checked before its next use."""
    from django.db import close_old_connections

    close_old_connections()


# Every periodic schedule of the platform. Times are UTC. Built when the configuration is first read, not
# at import: a settings module that imports the platform's settings (benchmarks/settings.py) imports this
# package while it is itself still half-loaded.
def _beat_schedule() -> dict:
    return {
        "beat-heartbeat": {
            "task": "observability.tasks.beat_heartbeat",
            "schedule": settings.BEAT_HEARTBEAT_SECONDS,
        },
        "apikeys-usage-rollup": {
            "task": "apikeys.tasks.usage_rollup",
            "schedule": settings.USAGE_ROLLUP_INTERVAL_SECONDS,
        },
        # Custom hostnames' DNS challenges: pending ones with backoff, verified ones re-checked daily.
        "tenants-hostnames-verify-due": {
            "task": "tenants.tasks.hostnames_verify_due_task",
            "schedule": 60.0,
        },
        # Deployments whose worker died (lease ran out) are retried or failed with the reason.
        "tenants-deployments-sweep": {
            "task": "tenants.tasks.deployments_sweep_task",
            "schedule": 60.0,
        },
        "cdn-invalidation-poll": {
            "task": "cdn.tasks.invalidation_poll_task",
            "schedule": 30.0,
        },
        # --- backups; all on the `backups` queue, serialised by the backup lock ---
        "backup-full-daily": {"task": "backups.tasks.backup_full_task", "schedule": crontab(hour=2, minute=0)},
        "backup-incremental-6h": {
            "task": "backups.tasks.backup_incremental_task",
            "schedule": crontab(hour="*/6", minute=30),
        },
        # Every minute: a repository's outage is reported within two minutes (log, metrics, alert rules).
        # Stale copies expire instead of piling up behind a long backup (run the backups worker with -c 2).
        "backup-wal-archive-check": {
            "task": "backups.tasks.wal_archive_check_task",
            "schedule": 60.0,
            "options": {"expires": 55},
        },
        # Runs whose process is gone (lease expired) are failed; leaked drill scratch clusters are reaped.
        "backup-reconcile": {
            "task": "backups.tasks.backups_reconcile_task",
            "schedule": 60.0,
            "options": {"expires": 55},
        },
        "backup-expire-daily": {"task": "backups.tasks.backup_expire_task", "schedule": crontab(hour=4, minute=0)},
        "backup-tenant-export-daily": {
            "task": "backups.tasks.tenant_export_task",
            "schedule": crontab(hour=3, minute=0),
        },
        "backup-restore-drill-weekly": {
            "task": "backups.tasks.restore_drill_task",
            "schedule": crontab(hour=5, minute=0, day_of_week="sun"),
        },
        # Queues webhook fan-outs and deliveries whose task was lost (broker down at commit, worker killed)
        # and retries due later than a countdown covers.
        "webhooks-sweep": {
            "task": "webhooks.tasks.webhooks_sweep_task",
            "schedule": 30.0,
        },
    }


app.add_defaults(lambda: {"beat_schedule": _beat_schedule()})

app.autodiscover_tasks()

from observability import celery_metrics  # noqa: E402,F401 - connects the workers' metrics signals
