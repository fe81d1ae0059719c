"""The base class of backup engines and the one way they run external commands."""

import logging
import os
import subprocess
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime

from platform_site.exceptions import ApplicationError

logger = logging.getLogger(__name__)


class BackupError(ApplicationError):
    """A backup operation failed; the message is safe to show and to log."""

    def __init__(self, message: str, *, code: str = "backup_failed"):
        super().__init__(code, message, status_code=500)


class BackupCommandError(BackupError):
    def __init__(self, command: str, returncode: int, stderr: str):
        self.command, self.returncode, self.stderr = command, returncode, stderr
        lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
        # pgBackRest prints the ERROR line first and HINT lines after it: the ERROR is the cause.
        first_error = next((i for i, line in enumerate(lines) if "ERROR:" in line), None)
        if first_error is None:
            detail = lines[-1] if lines else "no output"
        else:
            # The ERROR line and its continuation lines (the underlying causes), without the HINTs.
            cause = [lines[first_error]]
            for line in lines[first_error + 1 :]:
                if line.startswith("HINT:") or " ERROR:" in line or " WARN:" in line:
                    break
                cause.append(line)
            detail = " ".join(cause)
        super().__init__(f"{command} failed (exit {returncode}): {detail}")


class BackupNotSupported(BackupError):
    def __init__(self, message: str):
        super().__init__(message, code="not_supported")


def run_command(
    args: list[str], *, as_user: str | None = None, env: dict | None = None, timeout: float = 3600
) -> subprocess.CompletedProcess:
    """Run one command from an argument list, capture its output, raise BackupCommandError on failure.

    As root the command runs as `as_user` through runuser (pgBackRest refuses any user but the
    database's owner). The environment is the caller's, never ours: secrets stay out of it.
    """
    argv = list(args)
    if as_user and os.geteuid() == 0:
        argv = ["runuser", "-u", as_user, "--", *argv]
    name = " ".join(args[:2]) if args[0] == "pgbackrest" else os.path.basename(args[0])
    try:
        completed = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL, cwd="/"
        )
    except FileNotFoundError as exc:
        raise BackupError(f"{name}: executable not found ({exc.filename})", code="not_installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise BackupError(f"{name}: timed out after {timeout:.0f} s", code="timeout") from exc
    if completed.returncode != 0:
        raise BackupCommandError(name, completed.returncode, completed.stderr or completed.stdout)
    return completed


@dataclass
class BackupInfo:
    """One backup set as the engine's repository describes it."""

    label: str
    kind: str
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    size_bytes: int | None = None
    repo_size_bytes: int | None = None
    wal_start: str = ""
    wal_stop: str = ""
    lsn_start: str = ""
    lsn_stop: str = ""
    error: bool = False
    repo: int = 1
    extra: dict = field(default_factory=dict)


@dataclass
class RestoredCluster:
    """A restored copy that accepts connections."""

    data_dir: str
    port: int
    recovered_lsn: str = ""
    recovered_time: str = ""
    connect: object = None  # a callable returning a DB-API connection to the restored copy
    vendor: str = "postgresql"


class BackupEngine:
    """Required: backup, list_backups, expire. Optional capabilities are flags."""

    supports_incremental = False
    supports_pitr = False
    supports_wal_archiving = False

    def __init__(self, *, alias: str):
        self.alias = alias

    def setup(self) -> str:
        """Make the engine ready (configuration, repository); idempotent."""
        return "nothing to set up"

    def backup(self, *, kind: str) -> BackupInfo:
        raise NotImplementedError

    def list_backups(self) -> list[BackupInfo]:
        raise NotImplementedError

    def expire(self, *, dry_run: bool = False, keep_full: int | None = None) -> str:
        raise NotImplementedError

    def restored_copy(self, *, label: str | None = None) -> AbstractContextManager[RestoredCluster]:
        """A scratch copy of a backup (the latest by default), removed on exit."""
        raise NotImplementedError

    def restore(self, *, to: str, port: int, target_time: str | None = None, force: bool = False) -> RestoredCluster:
        raise BackupNotSupported(f"{self.alias}: point-in-time recovery needs PostgreSQL (BACKUP_ENGINE=pgbackrest)")

    def archive_status(self) -> dict:
        raise BackupNotSupported(f"{self.alias}: WAL archiving needs PostgreSQL (BACKUP_ENGINE=pgbackrest)")

    def describe(self) -> Iterator[str]:
        yield f"engine {self.alias} ({type(self).__name__})"
