"""Never two backups at once: a cluster-wide lock on top of pgBackRest's own.

PostgreSQL: a session advisory lock on the primary (released when the holder's connection dies, so a
killed worker never leaves it held). SQLite: an exclusive flock on a file beside the backups.
"""

import contextlib
import fcntl
from collections.abc import Iterator

from django.conf import settings
from django.db import DatabaseError, connection

from core.exceptions import ConflictError

# Arbitrary but fixed: pg_try_advisory_lock(BACKUP_LOCK_KEY) means "a backup is running".
BACKUP_LOCK_KEY = 7_412_001


class BackupInProgress(ConflictError):
    def __init__(self):
        super().__init__("Another backup is running; this one was not started.", code="backup_in_progress")


@contextlib.contextmanager
def backup_lock() -> Iterator[None]:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [BACKUP_LOCK_KEY])
            if not cursor.fetchone()[0]:
                raise BackupInProgress()
        try:
            yield
        finally:
            # A lost connection (the primary stopped) took the session's lock with it: nothing to release.
            with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [BACKUP_LOCK_KEY])
        return
    settings.BACKUP_LOCAL_DIR.mkdir(parents=True, exist_ok=True)
    with open(settings.BACKUP_LOCAL_DIR / ".backup.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BackupInProgress() from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
