"""The backups' scrape-time metric sources (registered in BackupsConfig.ready; observability/collectors.py).

The WAL archiver's state and the last successful backups are read from PostgreSQL and the BackupRun /
TenantExport rows at scrape time, so they survive a process restart.
"""

from django.db import connections
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .selectors import last_successes, wal_backlog

WAL_ARCHIVER_METRIC_NAMES = frozenset(
    {
        "wal_archived_total",
        "wal_archive_failures_total",
        "wal_archive_last_success_timestamp_seconds",
        "wal_archive_last_failure_timestamp_seconds",
        "pg_wal_bytes",
        "wal_ready_bytes",
    }
)
BACKUP_METRIC_NAMES = frozenset({"backup_last_success_timestamp_seconds", "backup_last_duration_seconds"})


def wal_archive_families() -> list:
    connection = connections["default"]
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT archived_count, failed_count, extract(epoch FROM last_archived_time),"
            " extract(epoch FROM last_failed_time) FROM pg_stat_archiver"
        )
        archived, failed, last_archived, last_failed = cursor.fetchone()
    families = [
        CounterMetricFamily("wal_archived", "WAL segments archived (pg_stat_archiver).", value=archived),
        CounterMetricFamily("wal_archive_failures", "Failed WAL archive attempts (pg_stat_archiver).", value=failed),
    ]
    backlog = wal_backlog()
    if backlog["pg_wal_bytes"] is not None:
        families.append(
            GaugeMetricFamily("pg_wal_bytes", "Size of the primary's pg_wal.", value=backlog["pg_wal_bytes"])
        )
        families.append(
            GaugeMetricFamily(
                "wal_ready_bytes",
                "WAL in pg_wal that PostgreSQL has not archived yet (its .ready segments).",
                value=backlog["wal_ready_bytes"],
            )
        )
    if last_archived is not None:
        families.append(
            GaugeMetricFamily(
                "wal_archive_last_success_timestamp_seconds",
                "When the last WAL segment was archived.",
                value=float(last_archived),
            )
        )
    if last_failed is not None:
        families.append(
            GaugeMetricFamily(
                "wal_archive_last_failure_timestamp_seconds",
                "When WAL archiving last failed.",
                value=float(last_failed),
            )
        )
    return families


def backup_families() -> list:
    """The last successful backup of each kind, from the BackupRun/TenantExport records (restart-proof)."""
    last = GaugeMetricFamily(
        "backup_last_success_timestamp_seconds",
        "When the last successful backup of each type finished.",
        labels=["type"],
    )
    duration = GaugeMetricFamily(
        "backup_last_duration_seconds", "How long the last successful backup of each type took.", labels=["type"]
    )
    latest = last_successes()
    for backup_type, (started, finished) in sorted(latest.items()):
        last.add_metric([backup_type], finished.timestamp())
        duration.add_metric([backup_type], max(0.0, (finished - started).total_seconds()))
    return [last, duration]
