"""The base class of backup engines and the one way they run external commands."""

import logging
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime

from core.exceptions import ApplicationError

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


@dataclass(frozen=True)
class Repository:
    """Where an engine keeps backups: pgBackRest's repo<key>, or the SQLite engine's folder."""

    key: int
    type: str
    location: str

    @property
    def label(self) -> str:
        kind = {"s3": "S3", "posix": "posix", "gcs": "GCS", "azure": "Azure", "sftp": "SFTP"}.get(self.type, self.type)
        return f"repository {self.key} ({kind} at {self.location})"


class RepositoryUnreachable(BackupError):
    """A repository did not answer (network, TLS, missing mount); the message names it and says why."""

    def __init__(self, repository: Repository, detail: str):
        self.repository, self.detail = repository, detail
        super().__init__(f"{repository.label} unreachable: {detail}", code="repo_unreachable")


def run_command(
    args: list[str], *, as_user: str | None = None, env: dict | None = None, timeout: float = 3600
) -> subprocess.CompletedProcess:
    """Run one command from an argument list, capture its output, raise BackupCommandError on failure.

    As root the command runs as `as_user` through runuser (pgBackRest refuses any user but the
    database's owner). The environment is the caller's, never ours: secrets stay out of it. The command
    runs in a session of its own, so a time-out stops it and everything it started (runuser's child,
    pgBackRest's local processes), not only the first process.
    """
    argv = list(args)
    if as_user and os.geteuid() == 0:
        argv = ["runuser", "-u", as_user, "--", *argv]
    name = " ".join(args[:2]) if args[0] == "pgbackrest" else os.path.basename(args[0])
    try:
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL,
            cwd="/", start_new_session=True,
        )  # fmt: skip
    except FileNotFoundError as exc:
        raise BackupError(f"{name}: executable not found ({exc.filename})", code="not_installed") from exc
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        _stop_session(process)
        raise BackupError(f"{name}: timed out after {timeout:.0f} s", code="timeout") from exc
    except BaseException:
        _stop_session(process)
        raise
    completed = subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)
    if completed.returncode != 0:
        raise BackupCommandError(name, completed.returncode, completed.stderr or completed.stdout)
    return completed


def _stop_session(process: subprocess.Popen) -> None:
    """SIGTERM to the command's whole session (pgBackRest then releases its locks), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.communicate(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


@dataclass
class BackupInfo:
    """One backup set as the engine's repository describes it."""

    label: str
    kind: str
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    size_bytes: int | None = None
    repo_size_bytes: int | None = None
    delta_bytes: int | None = None
    repo_delta_bytes: int | None = None
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


@dataclass(frozen=True)
class CopyRequest:
    """Which scratch copy restored_copy makes; declared once so every engine takes the same options."""

    label: str | None = None  # the backup; the latest when None
    dbname: str | None = None  # the database the copy connects to; the default database's when None
    repo: int | None = None  # the repository; the default one when None
    scratch_dir: str | None = None  # where the copy goes; a new temporary folder when None
    target_name: str | None = None  # a named restore point to replay WAL up to; the backup's end when None


# The latest backup of the default repository, into a new scratch folder.
DEFAULT_COPY = CopyRequest()


class BackupEngine:
    """Required: backup, list_backups, expire. Optional capabilities are flags."""

    display_name = ""  # how the console names the engine ("pgBackRest"); the alias when empty
    supports_incremental = False
    supports_pitr = False
    supports_wal_archiving = False

    def __init__(self, *, alias: str):
        self.alias = alias

    def setup(self) -> str:
        """Make the engine ready (configuration, repository); idempotent."""
        return "nothing to set up"

    def repositories(self) -> list[Repository]:
        raise NotImplementedError

    @property
    def default_repo(self) -> int:
        return self.repositories()[0].key

    def repository(self, key: int | None) -> Repository:
        """The repository with this key (the default one for None); an unknown key is a clear error."""
        repositories = {repository.key: repository for repository in self.repositories()}
        key = self.default_repo if key is None else key
        if key not in repositories:
            raise BackupError(f"{self.alias}: no repository {key} (configured: {sorted(repositories)})", code="invalid")
        return repositories[key]

    def probe(self, *, repo: int) -> None:
        """Raise RepositoryUnreachable unless the repository answers, within a few seconds."""

    def backup(self, *, kind: str, repo: int | None = None) -> BackupInfo:
        raise NotImplementedError

    def list_backups(self, *, repo: int | None = None) -> list[BackupInfo]:
        raise NotImplementedError

    def expire(self, *, dry_run: bool = False, keep_full: int | None = None, repo: int | None = None) -> str:
        raise NotImplementedError

    def verify_repository(self, *, repo: int | None = None, label: str | None = None) -> str:
        """Check the checksums of what the repository holds; returns a summary, raises BackupError."""
        return "nothing to verify beyond the restore drill"

    def restored_copy(self, request: CopyRequest = DEFAULT_COPY) -> AbstractContextManager[RestoredCluster]:
        """A scratch copy of a backup (the latest by default), removed on exit."""
        raise NotImplementedError

    def recovery_point(self, *, name: str, repo: int | None = None) -> dict | None:
        """Mark a named point in the WAL and wait until it is archived in the repository; None when the
        engine has no WAL (the drill then checks the backup as it was taken)."""
        return None

    def stop_scratch_cluster(self, data_dir: str) -> None:
        """Stop a scratch cluster left running by a drill whose process is gone."""

    def restore(
        self, *, to: str, port: int, target_time: str | None = None, force: bool = False, repo: int | None = None
    ) -> RestoredCluster:
        raise BackupNotSupported(f"{self.alias}: point-in-time recovery needs PostgreSQL (BACKUP_ENGINE=pgbackrest)")

    def archive_status(self) -> dict:
        raise BackupNotSupported(f"{self.alias}: WAL archiving needs PostgreSQL (BACKUP_ENGINE=pgbackrest)")

    def describe(self) -> Iterator[str]:
        yield f"engine {self.alias} ({type(self).__name__})"
