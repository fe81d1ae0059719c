"""pgBackRest: physical full/incremental backups, WAL archiving and point-in-time recovery.

The configuration file is generated from settings (one [global] section with the repositories, one
section for the stanza) and rewritten only when it changed. pgBackRest runs as the database's OS user
(it refuses any other): as root we use runuser; a backups worker on the database host therefore runs as
root or as that user (see deploy/pgbackrest/README.md).

Repositories fail independently. WAL is archived asynchronously ([global:archive-push] archive-async=y,
as pgBackRest's documentation recommends for several repositories): the async process pushes every
ready segment to each repository it can reach, so repo1 stays current while repo2 is down; archive-push
gets a short io-timeout of its own so an unreachable repository costs seconds per attempt, not minutes.
Every other command names one repository (--repo), is preceded by a probe of that repository (a
connection, TLS and one HTTP request for S3; the folder for posix) and has a time-out of its own.

Longer than ~400 lines on purpose: one class, the engine, whose configuration file, command runner,
backups, restores and WAL status all read the same options and share one way of running pgBackRest as the
database's user; split by method it would only scatter one object. What is not the engine lives apart:
reading pgBackRest's output (pgbackrest_output.py) and local scratch clusters (clusters.py).
"""

import contextlib
import grp
import os
import pwd
import re
import shutil
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

from .base import (
    DEFAULT_COPY,
    BackupCommandError,
    BackupEngine,
    BackupError,
    BackupInfo,
    CopyRequest,
    Repository,
    RepositoryUnreachable,
    RestoredCluster,
    run_command,
)
from .clusters import free_port, log_tail, port_in_use, running_postmaster
from .pgbackrest_output import (
    STATUS_MISSING_STANZA_DATA,
    STATUS_MISSING_STANZA_PATH,
    STATUS_NO_BACKUP,
    STATUS_OK,
    UNREACHABLE_MARKERS,
    RepoState,
    describe_network_error,
    load_info,
    parse_info_json,
    pgbackrest_cause,
    segment_number,
)

BACKUP_KINDS = {"full", "incr", "diff"}

# Seconds for one `info` of one repository (its own io-timeout applies inside).
INFO_TIMEOUT = 60
RESTORE_POINT_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


class PgBackRestEngine(BackupEngine):
    display_name = "pgBackRest"
    supports_incremental = True
    supports_pitr = True
    supports_wal_archiving = True

    def __init__(
        self,
        *,
        alias: str,
        stanza: str,
        config_path: str,
        pg_data: str,
        pg_port: int,
        pg_socket_dir: str,
        pg_bindir: str,
        repos: list[dict],
        os_user: str = "postgres",
        backup_repo: int = 1,
        retention_full_days: int = 30,
        compress_type: str = "lz4",
        process_max: int = 2,
        io_timeout: int = 20,
        archive_push_io_timeout: int = 3,
        archive_push_queue_max: str = "",
        archive_timeout: int = 60,
        db_timeout: int = 600,
        backup_timeout: int = 6 * 3600,
        probe_timeout: float = 5.0,
    ):
        super().__init__(alias=alias)
        if not repos:
            raise BackupError("pgbackrest: no repository configured (PGBACKREST_REPO1_TYPE)", code="misconfigured")
        self.stanza = stanza
        self.config_path = Path(config_path)
        self.pg_data, self.pg_port, self.pg_socket_dir = pg_data, pg_port, pg_socket_dir
        self.pg_bindir = Path(pg_bindir)
        self.repos = repos
        self.os_user = os_user
        self.backup_repo = backup_repo
        self.retention_full_days = retention_full_days
        self.compress_type = compress_type
        self.process_max = process_max
        self.io_timeout = io_timeout
        self.archive_push_io_timeout = archive_push_io_timeout
        self.archive_push_queue_max = archive_push_queue_max
        self.archive_timeout = archive_timeout
        self.db_timeout = db_timeout
        self.backup_timeout = backup_timeout
        self.probe_timeout = probe_timeout

    @property
    def spool_path(self) -> Path:
        """The primary's archive-push queue: the acknowledgements its archive_command waits for."""
        return self.config_path.parent / "spool"

    # --- repositories ------------------------------------------------------------------------
    def repositories(self) -> list[Repository]:
        found = []
        for repo in self.repos:
            if repo["type"] == "s3":
                location = f"{repo['s3_endpoint']}:{repo.get('storage_port', 443)}, bucket {repo['s3_bucket']}"
            else:
                location = repo["path"]
            found.append(Repository(key=repo["key"], type=repo["type"], location=location))
        return found

    @property
    def default_repo(self) -> int:
        return self.backup_repo

    def _repo_options(self, key: int) -> dict:
        self.repository(key)  # an unknown key is a clear error
        return next(repo for repo in self.repos if repo["key"] == key)

    def probe(self, *, repo: int) -> None:
        """A few seconds at most: the folder of a posix repository, one HTTPS request to an S3 one."""
        repository = self.repository(repo)
        options = self._repo_options(repo)
        if options["type"] == "posix":
            path = Path(options["path"])
            if not path.is_dir():
                raise RepositoryUnreachable(repository, f"folder {path} does not exist or is not mounted")
            return
        if options["type"] != "s3":
            return  # other types: pgBackRest's own io-timeout bounds them
        host, port = options["s3_endpoint"], options.get("storage_port", 443)
        bucket = options["s3_bucket"]
        if options.get("s3_uri_style", "host") == "path":
            url = f"https://{host}:{port}/{bucket}"
        else:
            url = f"https://{bucket}.{host}:{port}/"
        context = ssl.create_default_context()
        if not options.get("storage_verify_tls", True):
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        request = urllib.request.Request(url, method="HEAD")  # noqa: S310 - https only
        try:
            with urllib.request.urlopen(request, timeout=self.probe_timeout, context=context):  # noqa: S310 - https only
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer (403 without credentials, 404) means the service is there
        except urllib.error.URLError as exc:
            detail = describe_network_error(exc.reason)
        except (OSError, ssl.SSLError) as exc:
            detail = describe_network_error(exc)
        raise RepositoryUnreachable(repository, detail)

    # --- configuration -----------------------------------------------------------------------
    def render_config(self, *, only_repos: set[int] | None = None) -> str:
        base = self.config_path.parent
        lines = ["# generated by the platform (backups.engines.pgbackrest) from settings; edits are lost", "[global]"]
        for repo in self.repos:
            if only_repos is not None and repo["key"] not in only_repos:
                continue
            prefix = f"repo{repo['key']}-"
            options = {"type": repo["type"], "path": repo["path"]}
            if repo["type"] == "s3":
                options.update(
                    {
                        "s3-bucket": repo["s3_bucket"],
                        "s3-endpoint": repo["s3_endpoint"],
                        "s3-region": repo["s3_region"],
                        "s3-uri-style": repo.get("s3_uri_style", "path"),
                        "storage-port": repo.get("storage_port", 443),
                        "storage-verify-tls": "y" if repo.get("storage_verify_tls", True) else "n",
                        # Keys from settings (AWS_*), written only to this 0640 file.
                        "s3-key": repo.get("s3_key") or settings.AWS_ACCESS_KEY_ID,
                        "s3-key-secret": repo.get("s3_key_secret") or settings.AWS_SECRET_ACCESS_KEY,
                    }
                )
            # Each repository has its own retention (e.g. a short one locally, a long one off-site).
            options.update(
                {
                    "retention-full-type": repo.get("retention_full_type") or "time",
                    "retention-full": repo.get("retention_full") or self.retention_full_days,
                    "bundle": "y",
                }
            )
            if repo.get("cipher_pass"):
                options.update({"cipher-type": "aes-256-cbc", "cipher-pass": repo["cipher_pass"]})
            lines += [f"{prefix}{name}={value}" for name, value in options.items()]
        lines += [
            f"compress-type={self.compress_type}",
            f"process-max={self.process_max}",
            # Bounded waits: a stalled repository, a query or a local process never hangs a command.
            f"io-timeout={self.io_timeout}",
            f"db-timeout={self.db_timeout}",
            f"protocol-timeout={self.db_timeout + 30}",
            "start-fast=y",
            f"archive-timeout={self.archive_timeout}",
            f"log-path={base / 'log'}",
            f"lock-path={base / 'lock'}",
            f"spool-path={self.spool_path}",
            "log-level-console=warn",
            "log-level-file=info",
            "",
            # WAL to every reachable repository, whatever another one does: asynchronous push with a
            # spool, and a short io-timeout so an unreachable repository delays the others by seconds.
            # Only archive-push: archive-get (restores, drills) stays synchronous and shares no lock.
            "[global:archive-push]",
            "archive-async=y",
            f"process-max={self.process_max}",
            f"io-timeout={self.archive_push_io_timeout}",
        ]
        if self.archive_push_queue_max:
            lines.append(f"archive-push-queue-max={self.archive_push_queue_max}")
        lines += [
            "",
            f"[{self.stanza}]",
            f"pg1-path={self.pg_data}",
            f"pg1-port={self.pg_port}",
            f"pg1-socket-path={self.pg_socket_dir}",
            f"pg1-user={self.os_user}",
            "",
        ]
        return "\n".join(lines)

    def _owner(self) -> tuple[int, int] | None:
        if os.geteuid() != 0:
            return None
        try:
            user = pwd.getpwnam(self.os_user)
        except KeyError as exc:
            raise BackupError(f"pgbackrest: OS user {self.os_user!r} does not exist", code="misconfigured") from exc
        return user.pw_uid, grp.getgrgid(user.pw_gid).gr_gid

    def write_config(self) -> bool:
        """Write the generated configuration if it differs; True when it changed."""
        base = self.config_path.parent
        owner = self._owner()
        for path in (base, base / "log", base / "lock", self.spool_path):
            path.mkdir(parents=True, exist_ok=True)
            if owner:
                os.chown(path, *owner)
        for repo in self.repos:
            if repo["type"] == "posix":
                Path(repo["path"]).mkdir(parents=True, exist_ok=True)
                if owner:
                    os.chown(repo["path"], *owner)
                os.chmod(repo["path"], 0o750)  # noqa: S103 - the group of the DB user reads it
        return self._write_file(self.config_path, self.render_config())

    def _write_file(self, path: Path, text: str) -> bool:
        if path.exists() and path.read_text() == text:
            return False
        owner = self._owner()
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        if owner:
            os.chown(tmp, 0, owner[1])
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
        return True

    # --- commands ----------------------------------------------------------------------------
    def _env(self) -> dict:
        # Not our environment: pgBackRest reads PGBACKREST_* variables as options, and secrets stay out.
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "TZ": "UTC"}

    def pgbackrest(
        self, command: str, *options: str, timeout: float = 3600, repo: int | None = None, config=None, env=None
    ):
        """Run one pgBackRest command; with repo, a failure to reach it says which repository and why."""
        if config is None:
            self.write_config()
        config = config or self.config_path
        args = ["pgbackrest", command, f"--config={config}", f"--stanza={self.stanza}", *options]
        try:
            return run_command(args, as_user=self.os_user, env={**self._env(), **(env or {})}, timeout=timeout)
        except BackupCommandError as exc:
            if repo is not None and any(marker in exc.stderr for marker in UNREACHABLE_MARKERS):
                raise RepositoryUnreachable(self.repository(repo), pgbackrest_cause(exc.stderr)) from exc
            raise
        except BackupError as exc:
            if repo is not None and exc.code == "timeout":
                raise RepositoryUnreachable(self.repository(repo), f"no answer within {timeout:.0f} s") from exc
            raise

    def setup(self) -> str:
        """Stanza in every repository (created where it is missing), then pgBackRest's own check."""
        self.write_config()
        lines, problems = [], []
        for repository in self.repositories():
            try:
                lines.append(f"{repository.label}: {self.stanza_ensure(repo=repository.key)}")
            except BackupError as exc:
                problems.append(exc.message)
        if problems:
            raise BackupError("; ".join(lines + problems), code="setup_incomplete")
        self.pgbackrest("check", timeout=self.archive_timeout + 60)
        lines.append(f"pgbackrest check passed (WAL reaches all {len(lines)} repositories)")
        return "\n".join(lines)

    def stanza_ensure(self, *, repo: int) -> str:
        """Create the stanza in a repository where it is missing and the repository is empty; says what it did."""
        state = self.repo_state(repo=repo)
        if state.status_code == STATUS_MISSING_STANZA_PATH:
            self.stanza_create(repo=repo)
            return f"stanza {self.stanza} was missing (the repository was empty): created"
        if state.status_code == STATUS_MISSING_STANZA_DATA:
            raise BackupError(
                f"{state.repository.label}: stanza {self.stanza} has files but no info files; not recreated "
                "automatically (see the runbook: stanza-create after checking what the repository holds)",
                code="stanza_damaged",
            )
        return f"stanza {self.stanza} {state.status}"

    def stanza_create(self, *, repo: int) -> None:
        """stanza-create works on every configured repository; a configuration naming only this one keeps
        another repository's outage from stopping it."""
        self.probe(repo=repo)
        self.write_config()
        only = self.config_path.with_name(f"{self.config_path.stem}.repo{repo}.conf")
        self._write_file(only, self.render_config(only_repos={repo}))
        self.pgbackrest("stanza-create", timeout=INFO_TIMEOUT, repo=repo, config=only)

    def repo_state(self, *, repo: int) -> RepoState:
        repository = self.repository(repo)
        self.probe(repo=repo)
        result = self.pgbackrest("info", "--output=json", f"--repo={repo}", timeout=INFO_TIMEOUT, repo=repo)
        stanzas = load_info(result.stdout)
        entry = next((item for item in stanzas if item.get("name") == self.stanza), {})
        status = next(
            (item.get("status", {}) for item in entry.get("repo", []) if item.get("key") == repo),
            entry.get("status", {}),
        )
        code, message = status.get("code", 99), status.get("message", "unknown")
        if code not in (STATUS_OK, STATUS_NO_BACKUP, STATUS_MISSING_STANZA_PATH, STATUS_MISSING_STANZA_DATA):
            if any(marker in message for marker in UNREACHABLE_MARKERS):
                raise RepositoryUnreachable(repository, pgbackrest_cause(message))
            raise BackupError(f"{repository.label}: pgbackrest info says {message}", code="repo_error")
        archives = [item for item in entry.get("archive", []) if (item.get("database") or {}).get("repo-key") == repo]
        newest = max(archives, key=lambda item: (item.get("database") or {}).get("id", 0), default={})
        return RepoState(
            repository=repository,
            status_code=code,
            status=message,
            backups=[b for b in parse_info_json(stanzas, stanza=self.stanza) if b.repo == repo],
            archive_min=newest.get("min") or "",
            archive_max=newest.get("max") or "",
        )

    def backup(self, *, kind: str, repo: int | None = None) -> BackupInfo:
        if kind not in BACKUP_KINDS:
            raise BackupError(f"unknown backup type {kind!r}; use one of {sorted(BACKUP_KINDS)}", code="invalid")
        repo = self.repository(repo).key
        self.probe(repo=repo)
        started = time.time()
        self.pgbackrest("backup", f"--repo={repo}", f"--type={kind}", timeout=self.backup_timeout, repo=repo)
        ours = [b for b in self.list_backups(repo=repo) if b.started_at and b.started_at.timestamp() >= started - 2]
        if not ours:
            raise BackupError("pgbackrest backup finished but its set is not in `pgbackrest info`")
        return ours[-1]

    def list_backups(self, *, repo: int | None = None) -> list[BackupInfo]:
        state = self.repo_state(repo=self.repository(repo).key)
        if state.status_code in (STATUS_MISSING_STANZA_PATH, STATUS_MISSING_STANZA_DATA):
            # Not "no backups": its sets are unknown, and none of their records may change.
            raise BackupError(
                f"{state.repository.label}: stanza {self.stanza}: {state.status} (`manage.py backup setup` or the "
                "scheduled WAL check recreates it when the repository is empty)",
                code="stanza_missing",
            )
        return state.backups

    def expire(self, *, dry_run: bool = False, keep_full: int | None = None, repo: int | None = None) -> str:
        repo = self.repository(repo).key
        self.probe(repo=repo)
        options = [f"--repo={repo}"]
        if keep_full is not None:
            options += [f"--repo{repo}-retention-full-type=count", f"--repo{repo}-retention-full={keep_full}"]
        if dry_run:
            options.append("--dry-run")
        # log-level-console=info: expire says what it removes only at that level.
        result = self.pgbackrest("expire", *options, "--log-level-console=info", timeout=1800, repo=repo)
        return result.stdout

    def verify_repository(self, *, repo: int | None = None, label: str | None = None) -> str:
        """pgBackRest's `verify`: every file of a backup (all backups without label) and the WAL it needs,
        read back from the repository and checked against its checksum."""
        repository = self.repository(repo)
        self.probe(repo=repository.key)
        options = [f"--repo={repository.key}", "--output=text", "--verbose"] + ([f"--set={label}"] if label else [])
        output = self.pgbackrest("verify", *options, timeout=self.backup_timeout, repo=repository.key).stdout
        # verify exits 0 whatever it finds: its report says "status: error" and which backups are invalid.
        lines = [line.strip() for line in output.splitlines()]
        if "status: ok" not in lines:
            # Each backup or archive id is one line, its counts (missing, checksum invalid, ...) the next.
            damaged = [
                f"{line} ({counts})"
                for line, counts in zip(lines, [*lines[1:], ""], strict=True)
                if "status: invalid" in line or (line.startswith("archiveId:") and "missing: 0, checksum invalid: 0,"
                                                 not in counts)
            ]  # fmt: skip
            raise BackupError(
                f"{repository.label}: pgbackrest verify found damaged files: " + "; ".join(damaged or lines)[:2000],
                code="verify_failed",
            )
        return output.strip()

    # --- restore -----------------------------------------------------------------------------
    def restore(
        self,
        *,
        to: str,
        port: int,
        target_time: str | None = None,
        force: bool = False,
        repo: int | None = None,
        label: str | None = None,
        immediate: bool = False,
        target_name: str | None = None,
        dbname: str | None = None,
    ) -> RestoredCluster:
        """Restore into a new data directory with its own port and archive_mode=off, start it, and
        return where recovery ended. Every refusal comes before anything on disk is touched."""
        target = Path(to).absolute()
        repo = self.repository(repo).key
        existed = target.exists()
        self._refuse_restore_target(target, port=port, force=force)
        self.probe(repo=repo)
        owner = self._owner()
        if not existed:
            # Only a folder we create gets our owner and mode; an existing one (--force) is left as it is.
            target.mkdir(parents=True)
            if owner:
                os.chown(target, *owner)
            os.chmod(target, 0o700)
        options = [f"--pg1-path={target}", "--archive-mode=off", f"--repo={repo}"]
        env = {}
        if not self._is_primary_data(target):
            # restore empties the stanza's archive spool, as the restored cluster's: a copy elsewhere gets one
            # of its own, or the acknowledgements the running primary's archive_command waits for are deleted
            # and it waits archive-timeout for a segment already pushed. From the environment, not the
            # command line: restore copies command-line options into restore_command, and archive-get
            # refuses spool-path without archive-async.
            env["PGBACKREST_SPOOL_PATH"] = str(self.spool_path.with_name("spool-restore"))
        if force:
            options.append("--delta")
        if label:
            options.append(f"--set={label}")
        if target_time:
            options += ["--type=time", f"--target={target_time}", "--target-action=promote"]
        elif target_name:
            options += ["--type=name", f"--target={target_name}", "--target-action=promote"]
        elif immediate:
            options += ["--type=immediate", "--target-action=promote"]
        self.pgbackrest("restore", *options, timeout=self.backup_timeout, repo=repo, env=env)
        log = target / "restore-startup.log"
        try:
            self._start_cluster(target, port, log)
        except BackupCommandError as exc:
            # pg_ctl only says "Examine the log output": the cause is the server's FATAL line.
            fatal = [line.split("FATAL:", 1)[1].strip() for line in log_tail(log) if "FATAL:" in line]
            raise BackupError(
                f"the restored cluster did not start: {fatal[-1] if fatal else exc.message} (log: {log})",
                code="restore_failed",
            ) from exc
        cluster = RestoredCluster(data_dir=str(target), port=port, connect=self._connector(port, dbname))
        deadline = time.monotonic() + 300
        with contextlib.closing(cluster.connect()) as connection:
            connection.autocommit = True
            with connection.cursor() as cursor:
                while True:
                    cursor.execute("SELECT pg_is_in_recovery()")
                    if not cursor.fetchone()[0]:
                        break
                    if time.monotonic() > deadline:
                        raise BackupError(f"the restored cluster on port {port} is still recovering after 300 s")
                    time.sleep(0.2)
                cursor.execute("SELECT pg_last_wal_replay_lsn()::text, pg_last_xact_replay_timestamp()::text")
                lsn, replayed = cursor.fetchone()
        cluster.recovered_lsn, cluster.recovered_time = lsn or "", replayed or ""
        return cluster

    def _is_primary_data(self, target: Path) -> bool:
        return target.resolve() == Path(self.pg_data).resolve()

    def _refuse_restore_target(self, target: Path, *, port: int, force: bool) -> None:
        if self._is_primary_data(target) and not force:
            raise BackupError(
                f"{target} is the primary's data directory; refusing to overwrite it without --force",
                code="refused",
            )
        running = running_postmaster(target)
        if running:
            raise BackupError(
                f"PostgreSQL (pid {running}) is running on {target}; stop it before restoring into it",
                code="refused",
            )
        if target.exists() and not target.is_dir():
            raise BackupError(f"{target} exists and is not a directory", code="refused")
        if target.exists() and any(target.iterdir()):
            if not force:
                raise BackupError(f"{target} exists and is not empty; choose a new directory", code="refused")
            if not (target / "PG_VERSION").exists() and not (target / "backup.manifest").exists():
                # pgBackRest's --delta needs a PostgreSQL data directory; it would refuse this one late.
                raise BackupError(
                    f"{target} is not empty and is not a PostgreSQL data directory (no PG_VERSION); --force only "
                    "restores over a data directory",
                    code="refused",
                )
        if port_in_use(port):
            raise BackupError(f"port {port} is in use; choose another --port", code="refused")

    def _start_cluster(self, target: Path, port: int, log: Path) -> None:
        run_command(
            [
                str(self.pg_bindir / "pg_ctl"),
                "-D",
                str(target),
                "-l",
                str(log),
                "-o",
                f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.pg_socket_dir}",
                "-w",
                "-t",
                "300",
                "start",
            ],
            as_user=self.os_user,
            timeout=330,
        )

    def _connector(self, port: int, dbname: str | None):
        database = settings.DATABASES["default"]

        def connect():
            import psycopg

            return psycopg.connect(
                host="127.0.0.1",
                port=port,
                dbname=dbname or database["NAME"],
                user=database.get("USER") or self.os_user,
                password=database.get("PASSWORD") or None,
                connect_timeout=10,
            )

        return connect

    def stop_cluster(self, data_dir: str, *, mode: str = "fast") -> None:
        run_command(
            [str(self.pg_bindir / "pg_ctl"), "-D", data_dir, "-m", mode, "-w", "-t", "60", "stop"],
            as_user=self.os_user,
            timeout=90,
        )

    def stop_scratch_cluster(self, data_dir: str) -> None:
        if running_postmaster(Path(data_dir)):
            self.stop_cluster(data_dir, mode="immediate")

    def _superuser_sql(self, sql: str) -> list[str]:
        """One statement as the database's OS user over the unix socket: the privileges pgBackRest has."""
        result = run_command(
            [
                str(self.pg_bindir / "psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
                "-h", self.pg_socket_dir, "-p", str(self.pg_port), "-d", "postgres", "-c", sql,
            ],
            as_user=self.os_user,
            timeout=60,
        )  # fmt: skip
        return result.stdout.strip().split("|")

    def recovery_point(self, *, name: str, repo: int | None = None) -> dict:
        """A named restore point, its WAL segment switched out and waited for in the repository."""
        if not RESTORE_POINT_NAME.fullmatch(name):
            raise BackupError(f"invalid restore point name {name!r}", code="invalid")
        repo = self.repository(repo).key
        lsn, walfile = self._superuser_sql(
            f"WITH point AS (SELECT pg_create_restore_point('{name}') AS lsn) "  # noqa: S608 - name checked above
            "SELECT lsn::text, pg_walfile_name(lsn) FROM point"
        )
        self._superuser_sql("SELECT pg_switch_wal()")
        deadline = time.monotonic() + self.archive_timeout + 60
        # The asynchronous push usually lands the segment within a second: look again soon, then less often.
        pause = 0.1
        while True:
            state = self.repo_state(repo=repo)
            if state.archive_max and segment_number(state.archive_max) >= segment_number(walfile):
                return {"name": name, "lsn": lsn, "wal": walfile, "repo": repo}
            if time.monotonic() > deadline:
                raise BackupError(
                    f"WAL segment {walfile} (restore point {name}) did not reach {state.repository.label} within "
                    f"{self.archive_timeout + 60} s: WAL archiving to it is not working",
                    code="archive_timeout",
                )
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    @contextlib.contextmanager
    def restored_copy(self, request: CopyRequest = DEFAULT_COPY) -> Iterator[RestoredCluster]:
        scratch = request.scratch_dir or tempfile.mkdtemp(prefix="restore-drill-", dir=settings.BACKUP_SCRATCH_DIR)
        os.chmod(scratch, 0o755)  # noqa: S103 - the database OS user must traverse it
        data_dir = os.path.join(scratch, "data")
        cluster = None
        try:
            cluster = self.restore(
                to=data_dir, port=free_port(), label=request.label, repo=request.repo,
                immediate=request.target_name is None, target_name=request.target_name, dbname=request.dbname,
            )  # fmt: skip
            yield cluster
        finally:
            if cluster is not None or os.path.exists(os.path.join(data_dir, "postmaster.pid")):
                with contextlib.suppress(BackupError):
                    self.stop_cluster(data_dir)
            shutil.rmtree(scratch, ignore_errors=True)

    # --- WAL archiving -----------------------------------------------------------------------
    def archive_status(self) -> dict:
        """pg_stat_archiver on the primary, and each repository's newest archived segment: which
        repository is failing or falling behind, and why."""
        from django.db import connection

        from ..selectors import wal_backlog

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT archived_count, failed_count, last_archived_wal, last_archived_time, last_failed_wal,"
                " last_failed_time, pg_walfile_name(pg_current_wal_lsn()) FROM pg_stat_archiver"
            )
            archived, failed, last_wal, last_time, failed_wal, failed_time, current_wal = cursor.fetchone()
        behind = segment_number(current_wal) - segment_number(last_wal) if last_wal else None
        failing = bool(failed_time and (not last_time or failed_time > last_time))
        limit = settings.BACKUP_WAL_MAX_SEGMENTS_BEHIND
        lagging = behind is not None and behind > limit
        repos = [
            self._repo_archive_status(key, current_wal=current_wal, failing_wal=failed_wal if failing else "")
            for key in (repository.key for repository in self.repositories())
        ]
        return {
            "ok": not failing and not lagging and all(repo["ok"] for repo in repos),
            "failing": failing,
            "segments_behind": behind,
            "archived_count": archived,
            "failed_count": failed,
            "last_archived_wal": last_wal or "",
            "last_archived_time": last_time.isoformat() if last_time else None,
            "last_failed_wal": failed_wal or "",
            "last_failed_time": failed_time.isoformat() if failed_time else None,
            "current_wal": current_wal,
            **wal_backlog(),
            "repos": repos,
        }

    def _repo_archive_status(self, repo: int, *, current_wal: str, failing_wal: str) -> dict:
        repository = self.repository(repo)
        entry = {
            "repo": repo, "label": repository.label, "reachable": False, "ok": False, "stanza": "",
            "stanza_missing": False, "last_archived_wal": "", "segments_behind": None, "error": "",
        }  # fmt: skip
        try:
            state = self.repo_state(repo=repo)
        except BackupError as exc:
            entry["error"] = exc.message
            return entry
        entry["reachable"] = True
        entry["stanza_missing"] = state.status_code == STATUS_MISSING_STANZA_PATH
        entry["stanza"] = state.status
        entry["last_archived_wal"] = state.archive_max
        if state.archive_max:
            entry["segments_behind"] = segment_number(current_wal) - segment_number(state.archive_max)
        # PostgreSQL retries the oldest segment not archived everywhere; a repository without it is the
        # one failing (the others have it, and later ones, from the asynchronous push).
        missing_failed = bool(failing_wal) and (
            not state.archive_max or segment_number(state.archive_max) < segment_number(failing_wal)
        )
        behind = entry["segments_behind"]
        if state.status_code not in (STATUS_OK, STATUS_NO_BACKUP):
            entry["error"] = f"{repository.label}: stanza {self.stanza}: {state.status}"
        elif missing_failed:
            entry["error"] = f"{repository.label}: WAL segment {failing_wal} has not reached it (archive-push failing)"
        elif behind is not None and behind > settings.BACKUP_WAL_MAX_SEGMENTS_BEHIND:
            entry["error"] = f"{repository.label}: {behind} WAL segments behind"
        entry["ok"] = not entry["error"]
        return entry
