"""Prometheus metrics of backups; alert rules watch these (and the admin shows the records)."""

from prometheus_client import Counter, Gauge

BACKUP_RUNS = Counter("platform_backup_runs_total", "Backup operations by kind and outcome", ["kind", "status"])
BACKUP_LAST_SUCCESS = Gauge(
    "platform_backup_last_success_timestamp_seconds", "When the last successful backup of a kind finished", ["kind"]
)
WAL_ARCHIVE_OK = Gauge("platform_wal_archive_ok", "1 when WAL archiving works and keeps up, else 0")
WAL_ARCHIVE_SEGMENTS_BEHIND = Gauge(
    "platform_wal_archive_segments_behind", "WAL segments between the current one and the last archived"
)
