"""Embedded mode: full copies of the SQLite database through SQLite's online backup API."""

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings

from .base import (
    DEFAULT_COPY,
    BackupEngine,
    BackupError,
    BackupInfo,
    BackupNotSupported,
    CopyRequest,
    Repository,
    RestoredCluster,
)

INCREMENTAL_MESSAGE = (
    "incremental backups and point-in-time recovery need PostgreSQL with pgBackRest "
    "(set DATABASE_URL; BACKUP_ENGINE=pgbackrest); the SQLite engine makes full copies only"
)


class SQLiteEngine(BackupEngine):
    display_name = "SQLite online backup"

    def __init__(self, *, alias: str, directory: str, retention_full_days: int = 30, database: str | None = None):
        super().__init__(alias=alias)
        self.directory = Path(directory)
        self.retention_full_days = retention_full_days
        self._database = database

    @property
    def database(self) -> str:
        return self._database or str(settings.DATABASES["default"]["NAME"])

    def setup(self) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        return f"backups go to {self.directory}"

    def repositories(self) -> list[Repository]:
        return [Repository(key=1, type="local", location=str(self.directory))]

    def backup(self, *, kind: str, repo: int | None = None) -> BackupInfo:
        self.repository(repo)
        if kind != "full":
            raise BackupNotSupported(INCREMENTAL_MESSAGE)
        if not Path(self.database).exists():
            raise BackupError(f"SQLite database {self.database} does not exist")
        self.setup()
        started = datetime.now(tz=UTC)
        label = started.strftime("%Y%m%d-%H%M%S-%fF")
        target = self.directory / f"{label}.sqlite3"
        source = sqlite3.connect(self.database)
        copy = sqlite3.connect(target)
        try:
            # The online backup API copies a consistent snapshot while others keep writing.
            source.backup(copy)
        finally:
            copy.close()
            source.close()
        return self._info(target, started=started, stopped=datetime.now(tz=UTC))

    def _info(self, path: Path, *, started=None, stopped=None) -> BackupInfo:
        stat = path.stat()
        stopped = stopped or datetime.fromtimestamp(stat.st_mtime, tz=UTC)
        return BackupInfo(
            label=path.stem,
            kind="full",
            started_at=started or stopped,
            stopped_at=stopped,
            size_bytes=stat.st_size,
            repo_size_bytes=stat.st_size,
        )

    def list_backups(self, *, repo: int | None = None) -> list[BackupInfo]:
        self.repository(repo)
        if not self.directory.exists():
            return []
        return [self._info(path) for path in sorted(self.directory.glob("*.sqlite3"))]

    def expire(self, *, dry_run: bool = False, keep_full: int | None = None, repo: int | None = None) -> str:
        self.repository(repo)
        backups = self.list_backups()
        if keep_full is not None:
            doomed = backups[: max(len(backups) - keep_full, 0)]
        else:
            cutoff = datetime.now(tz=UTC) - timedelta(days=self.retention_full_days)
            # Never the newest: a retention window with no backup in it still keeps one.
            doomed = [b for b in backups[:-1] if b.stopped_at < cutoff]
        lines = []
        for info in doomed:
            lines.append(f"{'[DRY-RUN] ' if dry_run else ''}expire full backup {info.label}")
            if not dry_run:
                (self.directory / f"{info.label}.sqlite3").unlink()
        return "\n".join(lines)

    @contextlib.contextmanager
    def restored_copy(self, request: CopyRequest = DEFAULT_COPY) -> Iterator[RestoredCluster]:
        backups = self.list_backups()
        chosen = [b for b in backups if b.label == request.label] if request.label else backups[-1:]
        if not chosen:
            raise BackupError(f"no backup {request.label or ''} to restore".replace("  ", " "))
        path = self.directory / f"{chosen[0].label}.sqlite3"
        # Read-only: a drill must never change the backup it checks.
        cluster = RestoredCluster(
            data_dir=str(path),
            port=0,
            connect=lambda: sqlite3.connect(f"file:{path}?mode=ro", uri=True),
            vendor="sqlite",
            recovered_time=str(chosen[0].stopped_at),
        )
        yield cluster
