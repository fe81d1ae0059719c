"""Physical backups, restore drills, WAL-archive checks and the reconcile of leftovers. Tasks and commands
call these; per-tenant exports are in backups/tenant_exports.py, their restore in backups/tenant_restore.py.

Longer than ~400 lines on purpose: one topic, the physical backups of the engine. Runs, drills, the WAL
check and the reconcile share the engine, the backup lock, the run records and their leases; a drill is
the proof of a run, and the reconcile cleans up after both."""

import contextlib
import hashlib
import logging
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from core.exceptions import ApplicationError
from observability import metrics

from .engines import get_engine
from .engines.base import BackupEngine, BackupError, BackupInfo, CopyRequest, Repository, RestoredCluster
from .leases import lease_fields, lease_held, leases_reconcile
from .locking import backup_lock
from .models import BackupRun, RestoreVerification, RunStatus, Trigger
from .tenant_data import tenant_owned_models

logger = logging.getLogger(__name__)

SCRATCH_PREFIX = "restore-drill-"


# --- physical backups ---------------------------------------------------------------------------


def tenant_table_row_counts() -> dict[str, int]:
    """Row counts of the tenant-owned tables, in one statement (one snapshot, one round trip)."""
    owned = tenant_owned_models()
    counts = ", ".join(
        f"(SELECT count(*) FROM {connection.ops.quote_name(item.model._meta.db_table)})"  # noqa: S608
        for item in owned
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {counts}")  # table names come from the models, not from input
        return dict(zip([item.label for item in owned], cursor.fetchone(), strict=True))


def _apply_info(run: BackupRun, info: BackupInfo) -> None:
    run.label = info.label
    run.kind = info.kind
    run.repo = info.repo
    run.backup_started_at = info.started_at
    run.backup_stopped_at = info.stopped_at
    run.size_bytes = info.size_bytes
    run.repo_size_bytes = info.repo_size_bytes
    run.delta_bytes = info.delta_bytes
    run.repo_delta_bytes = info.repo_delta_bytes
    run.wal_start, run.wal_stop = info.wal_start, info.wal_stop
    run.lsn_start, run.lsn_stop = info.lsn_start, info.lsn_stop


def _failure_message(exc: BaseException) -> str:
    if isinstance(exc, ApplicationError):
        return exc.message
    if isinstance(exc, DatabaseError):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        return f"the database connection was lost: {first}"
    return f"{type(exc).__name__}: {exc}"


def _save_outcome(row, fields: list[str]) -> bool:
    """Save a finished row; when the database is gone (the reason it failed), the lease reconcile will
    fail the row later, so this only logs. True when saved."""
    try:
        connection.close_if_unusable_or_obsolete()
        row.save(update_fields=fields)
    except DatabaseError as exc:
        logger.error(
            "%s %s: outcome not recorded (%s); the reconcile task fails it when its lease runs out",
            type(row).__name__, row.pk, exc.__class__.__name__,
        )  # fmt: skip
        return False
    return True


def backup_run(
    *, kind: str, trigger: str = Trigger.COMMAND, engine: BackupEngine | None = None, repo: int | None = None
) -> BackupRun:
    """Take one backup into one repository under the backup lock and record it; a failure is recorded
    (with the repository it targeted) and raised as one BackupError."""
    engine = engine or get_engine()
    repository = engine.repository(repo)
    with backup_lock():
        run = BackupRun.objects.create(
            engine=engine.alias, repo=repository.key, kind=kind, trigger=trigger, **lease_fields()
        )
        before: dict = {}
        try:
            with lease_held(run):
                before = tenant_table_row_counts()
                info = engine.backup(kind=kind, repo=repository.key)
                after = tenant_table_row_counts()
        except Exception as exc:
            # Whatever failed, the record must not stay "running": it says failed, with the reason.
            message = _failure_message(exc)
            run.status, run.error, run.finished_at = BackupRun.Status.FAILED, message, timezone.now()
            run.row_counts = {"before": before} if before else {}
            _save_outcome(run, ["status", "error", "finished_at", "row_counts"])
            metrics.record_backup_run(kind=kind, status="failed")
            logger.error("backup failed id=%s kind=%s %s: %s", run.pk, kind, repository.label, message)
            if isinstance(exc, ApplicationError):
                raise
            raise BackupError(f"backup failed: {message}") from exc
        _apply_info(run, info)
        run.row_counts = {"before": before, "after": after}
        run.status = BackupRun.Status.FAILED if info.error else BackupRun.Status.SUCCEEDED
        run.error = "the repository marks this backup as having errors" if info.error else ""
        run.finished_at = timezone.now()
        # A set recorded earlier by backup_sync (found in the repository) gives way to this run.
        BackupRun.objects.filter(engine=run.engine, repo=run.repo, label=run.label).exclude(pk=run.pk).delete()
        run.save()
    # The last success per kind is exported from BackupRun rows at scrape time (backups/metrics.py).
    metrics.record_backup_run(kind=kind, status=run.status)
    logger.info(
        "backup %s id=%s kind=%s repo=%s label=%s size=%s",
        run.status,
        run.pk,
        kind,
        run.repo,
        run.label,
        run.size_bytes,
    )
    return run


@dataclass
class SyncResult:
    """What backup_sync found: the records of every repository it could read, and why it could not read
    the others (their records are left as they were)."""

    runs: list[BackupRun] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)


def backup_sync(*, engine: BackupEngine | None = None) -> SyncResult:
    """Bring BackupRun records in line with each repository: new sets are added, vanished ones expired.

    A repository that cannot be listed (unreachable, stanza missing) changes none of its records: a set
    is marked expired only when its own repository, read successfully, no longer holds it.
    """
    engine = engine or get_engine()
    result = SyncResult()
    for repository in engine.repositories():
        try:
            infos = engine.list_backups(repo=repository.key)
        except BackupError as exc:
            result.errors[repository.key] = exc.message
            logger.error("backup list: %s", exc.message)
            continue
        result.runs += _sync_repository(engine, repository, infos)
    return result


@transaction.atomic
def _sync_repository(engine: BackupEngine, repository: Repository, infos: list[BackupInfo]) -> list[BackupRun]:
    seen, runs = set(), []
    for info in infos:
        seen.add(info.label)
        run = BackupRun.objects.filter(engine=engine.alias, repo=repository.key, label=info.label).first()
        if run is None:
            run = BackupRun(engine=engine.alias, trigger=Trigger.REPOSITORY, finished_at=info.stopped_at)
        _apply_info(run, info)
        if run.status in (BackupRun.Status.RUNNING, BackupRun.Status.EXPIRED) or run._state.adding:
            run.status = BackupRun.Status.FAILED if info.error else BackupRun.Status.SUCCEEDED
        run.save()
        runs.append(run)
    vanished = BackupRun.objects.filter(engine=engine.alias, repo=repository.key, status=BackupRun.Status.SUCCEEDED)
    vanished.exclude(label="").exclude(label__in=seen).update(status=BackupRun.Status.EXPIRED)
    return runs


@dataclass
class ExpireOutcome:
    repository: Repository
    output: str = ""
    error: str = ""


def backup_expire(
    *,
    dry_run: bool = False,
    keep_full: int | None = None,
    engine: BackupEngine | None = None,
    repo: int | None = None,
) -> list[ExpireOutcome]:
    """Apply retention to every repository (or one), each with its own policy; a dry run only says what
    would go. One repository's failure does not stop the others; it is returned with its reason."""
    engine = engine or get_engine()
    repositories = [engine.repository(repo)] if repo is not None else engine.repositories()
    outcomes = []
    with backup_lock():
        for repository in repositories:
            outcome = ExpireOutcome(repository=repository)
            try:
                outcome.output = engine.expire(dry_run=dry_run, keep_full=keep_full, repo=repository.key)
            except BackupError as exc:
                outcome.error = exc.message
                logger.error("backup expire: %s", exc.message)
            outcomes.append(outcome)
    if not dry_run:
        backup_sync(engine=engine)
    logger.info("backup expire dry_run=%s done (%s repositories)", dry_run, len(outcomes))
    return outcomes


def backup_restore(
    *,
    to: str,
    port: int,
    target_time: str | None = None,
    force: bool = False,
    engine: BackupEngine | None = None,
    repo: int | None = None,
) -> RestoredCluster:
    """Point-in-time recovery into a new data directory with its own port (never over the primary)."""
    engine = engine or get_engine()
    if target_time:
        _parse_target_time(target_time)
    return engine.restore(to=to, port=port, target_time=target_time, force=force, repo=repo)


def _parse_target_time(value: str) -> datetime:
    # pgBackRest passes the target to PostgreSQL; insist on an explicit zone so it is unambiguous.
    if not re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?[+-]\d\d(:?\d\d)?", value.strip()):
        raise ApplicationError(
            "invalid",
            'target time must look like "YYYY-MM-DD HH:MM:SS+00" (with a zone)',
            fields={"target_time": [value]},
        )
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ApplicationError("invalid", f"target time is not a valid time: {value}") from exc


# --- restore drills -----------------------------------------------------------------------------


def _scratch_tag() -> str:
    """Which database a scratch folder belongs to: several platforms may share one scratch folder."""
    database = connection.settings_dict
    identity = f"{database.get('HOST')}:{database.get('PORT')}/{database.get('NAME')}"
    return hashlib.sha256(identity.encode()).hexdigest()[:10]


def _scratch_root() -> Path:
    root = Path(settings.BACKUP_SCRATCH_DIR)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(
            f"the scratch folder BACKUP_SCRATCH_DIR={root} does not exist and cannot be created: {exc.strerror}",
            code="misconfigured",
        ) from exc
    if not root.is_dir():
        raise BackupError(f"BACKUP_SCRATCH_DIR={root} is not a folder", code="misconfigured")
    return root


def backup_verify(
    *, trigger: str = Trigger.COMMAND, backup_run: BackupRun | None = None, engine: BackupEngine | None = None
) -> RestoreVerification:
    """Restore drill: pgBackRest's `verify` of the backup's repository, then the backup restored from that
    repository into a scratch cluster with WAL replayed to a restore point made just before, and checked."""
    engine = engine or get_engine()
    run = backup_run or (
        BackupRun.objects.filter(engine=engine.alias, status=BackupRun.Status.SUCCEEDED).exclude(label="").first()
    )
    verification = RestoreVerification.objects.create(
        backup_run=run, trigger=trigger, repo=run.repo if run else None, **lease_fields()
    )
    try:
        with lease_held(verification):
            if run is None:
                raise BackupError("there is no successful backup to verify", code="not_found")
            _drill(engine, run, verification)
        verification.status = RestoreVerification.Status.SUCCEEDED
    except Exception as exc:  # noqa: BLE001 - whatever failed (the scratch cluster's driver too), the row says so
        verification.status, verification.error = RestoreVerification.Status.FAILED, _failure_message(exc)
        logger.error("restore drill failed id=%s: %s", verification.pk, verification.error)
    verification.finished_at = timezone.now()
    verification.scratch_path = ""
    _save_outcome(verification, ["status", "error", "finished_at", "details", "tables_checked", "scratch_path"])
    metrics.record_backup_run(kind="verify", status=verification.status)
    return verification


def _drill(engine: BackupEngine, run: BackupRun, verification: RestoreVerification) -> None:
    details = verification.details = {"label": run.label, "repo": run.repo, "tables": {}, "key_tables": {}}
    started = time.monotonic()
    details["repository_verify"] = engine.verify_repository(repo=run.repo, label=run.label)[:4000]
    scratch = tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{_scratch_tag()}-{verification.pk}-", dir=_scratch_root())
    verification.scratch_path = scratch
    verification.save(update_fields=["scratch_path", "details"])
    # The copy replays archived WAL up to a point marked now, not only to the backup's end: WAL
    # archiving into this repository is exercised end to end.
    before = tenant_table_row_counts()
    point = engine.recovery_point(name=f"drill-{verification.pk}-{int(time.time())}", repo=run.repo)
    if point is not None:
        expected = {"before": before, "after": tenant_table_row_counts()}
        details["recovery_target"] = point
    else:
        expected = run.row_counts
    database = connection.settings_dict["NAME"]
    scratch_copy = CopyRequest(
        label=run.label,
        dbname=database,
        repo=run.repo,
        scratch_dir=scratch,
        target_name=point["name"] if point else None,
    )
    with engine.restored_copy(scratch_copy) as cluster:
        details["recovered_lsn"], details["recovered_time"] = cluster.recovered_lsn, cluster.recovered_time
        with contextlib.closing(cluster.connect()) as restored:
            cursor = restored.cursor()
            for table in _tables(cursor, cluster.vendor):
                # Every table must be readable to the end, not only present in the catalog.
                cursor.execute(f'SELECT count(*) FROM "{table}"')  # noqa: S608 - names from the catalog
                details["tables"][table] = cursor.fetchone()[0]
    verification.tables_checked = len(details["tables"])
    details["seconds"] = round(time.monotonic() - started, 2)
    problems = drill_problems(details, expected)
    if point is not None and _lsn(cluster.recovered_lsn) < _lsn(point["lsn"]):
        problems.append(f"recovery stopped at {cluster.recovered_lsn}, before the restore point {point['lsn']}")
    if problems:
        raise BackupError("restored copy differs from what was recorded: " + "; ".join(problems))


def drill_problems(details: dict, expected: dict) -> list[str]:
    """Tenant tables whose restored row count lies outside the counts recorded before and after the
    point the copy was restored to."""
    owned = {item.label: item.model._meta.db_table for item in tenant_owned_models()}
    before, after = expected.get("before", {}), expected.get("after", {})
    problems = []
    for label, table in owned.items():
        restored_count = details["tables"].get(table)
        low = min(before.get(label, 0), after.get(label, 0))
        high = max(before.get(label, 0), after.get(label, 0))
        details["key_tables"][label] = {"restored": restored_count, "expected_between": [low, high]}
        if label in before and (restored_count is None or not low <= restored_count <= high):
            problems.append(f"{table}: {restored_count} rows, expected {low}..{high}")
    return problems


def _lsn(text: str) -> int:
    high, _, low = (text or "0/0").partition("/")
    return (int(high, 16) << 32) + int(low or "0", 16)


def _tables(cursor, vendor: str) -> list[str]:
    if vendor == "sqlite":
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1")
    else:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    return [row[0] for row in cursor.fetchall()]


# --- WAL archiving ------------------------------------------------------------------------------


def wal_archive_check(*, engine: BackupEngine | None = None) -> dict:
    """Per repository: reachable, stanza, newest archived segment, behind or failing (log + metrics).

    A reachable repository whose stanza is missing (moto restarted, a bucket emptied) gets it back
    here, and the result says so.
    """
    engine = engine or get_engine()
    status = engine.archive_status()
    actions = []
    for repo in status.get("repos", []):
        if repo.get("reachable") and repo.get("stanza_missing"):
            try:
                actions.append(f"{repo['label']}: {engine.stanza_ensure(repo=repo['repo'])}")
            except BackupError as exc:
                actions.append(exc.message)
    if actions:
        for action in actions:
            logger.warning("WAL archive check: %s", action)
        status = engine.archive_status()
    status["actions"] = actions
    metrics.record_wal_archive_check(status)
    if not status["ok"]:
        logger.error(
            "WAL archiving needs attention: failing=%s segments_behind=%s last_failed_wal=%s",
            status["failing"],
            status["segments_behind"],
            status["last_failed_wal"],
        )
        for repo in status.get("repos", []):
            if not repo["ok"]:
                logger.error("WAL archiving: %s", repo["error"])
    return status


# --- leftovers of processes that are gone ---------------------------------------------------------


def scratch_reap(*, engine: BackupEngine | None = None) -> list[str]:
    """Stop and remove the scratch clusters of drills that are no longer running (killed mid-drill)."""
    root = Path(settings.BACKUP_SCRATCH_DIR)
    if not root.is_dir():
        return []
    engine = engine or get_engine()
    prefix = f"{SCRATCH_PREFIX}{_scratch_tag()}-"
    now = timezone.now()
    reaped = []
    for path in sorted(root.glob(prefix + "*")):
        try:
            verification_id = int(path.name[len(prefix) :].split("-", 1)[0])
        except ValueError:
            continue
        verification = RestoreVerification.objects.filter(pk=verification_id).first()
        lease = verification.lease_expires_at if verification else None
        if verification and verification.status == RunStatus.RUNNING and lease and lease > now:
            continue  # a drill in progress
        try:
            engine.stop_scratch_cluster(str(path / "data"))
        except BackupError as exc:
            logger.error("scratch cluster in %s not stopped: %s", path, exc.message)
            continue
        shutil.rmtree(path, ignore_errors=True)
        RestoreVerification.objects.filter(pk=verification_id, scratch_path=str(path)).update(scratch_path="")
        logger.warning("reaped the scratch folder %s of drill %s (its process is gone)", path, verification_id)
        reaped.append(str(path))
    return reaped


def backups_reconcile(*, engine: BackupEngine | None = None) -> dict:
    """Runs whose process is gone are failed with the reason; their scratch clusters and folders go."""
    failed = leases_reconcile()
    return {"failed": failed, "reaped": scratch_reap(engine=engine)}
