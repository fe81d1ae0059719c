"""Reads for backups: the latest runs of each kind, and what piles up in pg_wal while a repository cannot
take it. The console and the metrics read through here."""

import logging
from datetime import datetime

from django.db import DatabaseError, connection, transaction

from .models import BackupKind, BackupRun, RestoreVerification, RunStatus, TenantExport

logger = logging.getLogger(__name__)


def latest_finished(model: type[BackupRun | TenantExport | RestoreVerification]) -> tuple:
    """(the latest finished row, the latest successful one) of backups, tenant exports or restore drills."""
    finished = model.objects.exclude(status=RunStatus.RUNNING)
    return (
        finished.order_by("-started_at").first(),
        finished.filter(status=RunStatus.SUCCEEDED).order_by("-finished_at").first(),
    )


def last_successes() -> dict[str, tuple[datetime, datetime]]:
    """(started, finished) of the last successful backup of each kind and of the last tenant export."""
    succeeded = {"status": RunStatus.SUCCEEDED, "finished_at__isnull": False}
    rows = {
        kind: BackupRun.objects.filter(kind=kind, **succeeded).order_by("-finished_at")
        .values_list("started_at", "finished_at").first()
        for kind in BackupKind.values
    }  # fmt: skip
    rows["tenant_export"] = (
        TenantExport.objects.filter(**succeeded)
        .order_by("-finished_at")
        .values_list("started_at", "finished_at")
        .first()
    )
    return {kind: row for kind, row in rows.items() if row is not None}


def wal_backlog() -> dict:
    """pg_wal's size and the segments PostgreSQL still has to archive (its .ready files), in bytes.

    Reading pg_wal needs superuser or pg_monitor: without them the values are None, not an error.
    """
    if connection.vendor != "postgresql":
        return {"pg_wal_bytes": None, "wal_ready_segments": None, "wal_ready_bytes": None}
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT (SELECT coalesce(sum(size), 0) FROM pg_ls_waldir()),"
                " (SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'),"
                " (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size')"
            )
            wal_bytes, ready, segment_size = cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("pg_wal size not readable (needs pg_monitor): %s", exc.__class__.__name__)
        return {"pg_wal_bytes": None, "wal_ready_segments": None, "wal_ready_bytes": None}
    return {"pg_wal_bytes": int(wal_bytes), "wal_ready_segments": ready, "wal_ready_bytes": ready * segment_size}
