"""Reads for backups: what piles up in pg_wal while a repository cannot take it."""

import logging

from django.db import DatabaseError, connection, transaction

logger = logging.getLogger(__name__)


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
