"""Backups, restore drills, WAL-archive checks and per-tenant exports. Tasks and commands call these."""

import contextlib
import hashlib
import io
import json
import logging
import re
import tarfile
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from datetime import time as dt_time
from pathlib import Path

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from platform_site import metrics
from platform_site.exceptions import ApplicationError
from tenants.access import publish_tenant_access
from tenants.models import Tenant

from .engines import get_engine
from .engines.base import BackupEngine, BackupError, BackupInfo, RestoredCluster
from .export_storage import export_fetch, export_put
from .locking import backup_lock
from .models import BackupRun, RestoreVerification, TenantExport, Trigger
from .tenant_data import TenantOwnedModel, schema_version, tenant_owned_models

logger = logging.getLogger(__name__)

EXPORT_FORMAT = 1
# PostgreSQL's COPY text format round-trips every type exactly; SQLite (embedded) uses JSON rows.
ENCODING_COPY = "postgresql-copy-text"
ENCODING_JSON = "json-rows"
Progress = Callable[[str, int, int], None]


class ExportJSONEncoder(DjangoJSONEncoder):
    """DjangoJSONEncoder cuts datetimes to milliseconds; an export must restore them exactly."""

    def default(self, o):
        if isinstance(o, datetime | dt_time):
            return o.isoformat()
        return super().default(o)


def _noop(stage: str, done: int, total: int) -> None:
    return None


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
    run.wal_start, run.wal_stop = info.wal_start, info.wal_stop
    run.lsn_start, run.lsn_stop = info.lsn_start, info.lsn_stop


def backup_run(*, kind: str, trigger: str = Trigger.COMMAND, engine: BackupEngine | None = None) -> BackupRun:
    """Take one backup under the backup lock and record it; a failure is recorded and re-raised."""
    engine = engine or get_engine()
    with backup_lock():
        run = BackupRun.objects.create(engine=engine.alias, kind=kind, trigger=trigger)
        before = tenant_table_row_counts()
        try:
            info = engine.backup(kind=kind)
        except Exception as exc:
            # Whatever failed, the record must not stay "running": it says failed, with the reason.
            message = exc.message if isinstance(exc, BackupError) else f"{type(exc).__name__}: {exc}"
            run.status, run.error, run.finished_at = BackupRun.Status.FAILED, message, timezone.now()
            run.row_counts = {"before": before}
            run.save()
            metrics.BACKUP_RUNS.labels(kind=kind, status="failed").inc()
            logger.error("backup failed id=%s kind=%s: %s", run.pk, kind, message)
            raise
        _apply_info(run, info)
        run.row_counts = {"before": before, "after": tenant_table_row_counts()}
        run.status = BackupRun.Status.FAILED if info.error else BackupRun.Status.SUCCEEDED
        run.error = "the repository marks this backup as having errors" if info.error else ""
        run.finished_at = timezone.now()
        # A set recorded earlier by backup_sync (found in the repository) gives way to this run.
        BackupRun.objects.filter(engine=run.engine, repo=run.repo, label=run.label).exclude(pk=run.pk).delete()
        run.save()
    # The last success per kind is exported from BackupRun rows at scrape time (platform_site/metrics.py).
    metrics.BACKUP_RUNS.labels(kind=kind, status=run.status).inc()
    logger.info("backup %s id=%s kind=%s label=%s size=%s", run.status, run.pk, kind, run.label, run.size_bytes)
    return run


@transaction.atomic
def backup_sync(*, engine: BackupEngine | None = None) -> list[BackupRun]:
    """Bring BackupRun records in line with the repository: new sets are added, vanished ones expired."""
    engine = engine or get_engine()
    infos = engine.list_backups()
    seen = set()
    runs = []
    for info in infos:
        seen.add((info.repo, info.label))
        run = BackupRun.objects.filter(engine=engine.alias, repo=info.repo, label=info.label).first()
        if run is None:
            run = BackupRun(engine=engine.alias, trigger=Trigger.REPOSITORY, finished_at=info.stopped_at)
        _apply_info(run, info)
        if run.status in (BackupRun.Status.RUNNING, BackupRun.Status.EXPIRED) or run._state.adding:
            run.status = BackupRun.Status.FAILED if info.error else BackupRun.Status.SUCCEEDED
        run.save()
        runs.append(run)
    for run in BackupRun.objects.filter(engine=engine.alias, status=BackupRun.Status.SUCCEEDED).exclude(label=""):
        if (run.repo, run.label) not in seen:
            run.status = BackupRun.Status.EXPIRED
            run.save(update_fields=["status"])
    return runs


def backup_expire(*, dry_run: bool = False, keep_full: int | None = None, engine: BackupEngine | None = None) -> str:
    """Apply retention (30 days of full backups by default); a dry run only says what would go."""
    engine = engine or get_engine()
    with backup_lock():
        output = engine.expire(dry_run=dry_run, keep_full=keep_full)
    if not dry_run:
        backup_sync(engine=engine)
    logger.info("backup expire dry_run=%s done", dry_run)
    return output


def backup_restore(
    *, to: str, port: int, target_time: str | None = None, force: bool = False, engine: BackupEngine | None = None
) -> RestoredCluster:
    """Point-in-time recovery into a new data directory with its own port (never over the primary)."""
    engine = engine or get_engine()
    if target_time:
        _parse_target_time(target_time)
    return engine.restore(to=to, port=port, target_time=target_time, force=force)


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


def backup_verify(
    *, trigger: str = Trigger.COMMAND, backup_run: BackupRun | None = None, engine: BackupEngine | None = None
) -> RestoreVerification:
    """Restore drill: restore a backup (the latest by default) into a scratch cluster and check it."""
    engine = engine or get_engine()
    run = backup_run or (
        BackupRun.objects.filter(engine=engine.alias, status=BackupRun.Status.SUCCEEDED).exclude(label="").first()
    )
    verification = RestoreVerification.objects.create(backup_run=run, trigger=trigger)
    try:
        if run is None:
            raise BackupError("there is no successful backup to verify", code="not_found")
        owned = {item.label: item.model._meta.db_table for item in tenant_owned_models()}
        details = {"label": run.label, "tables": {}, "key_tables": {}}
        database = connection.settings_dict["NAME"]
        with engine.restored_copy(label=run.label, dbname=database) as cluster:
            details["recovered_lsn"], details["recovered_time"] = cluster.recovered_lsn, cluster.recovered_time
            with contextlib.closing(cluster.connect()) as restored:
                cursor = restored.cursor()
                for table in _tables(cursor, cluster.vendor):
                    # Every table must be readable to the end, not only present in the catalog.
                    cursor.execute(f'SELECT count(*) FROM "{table}"')  # noqa: S608 - names from the catalog
                    details["tables"][table] = cursor.fetchone()[0]
        problems = []
        before, after = run.row_counts.get("before", {}), run.row_counts.get("after", {})
        for label, table in owned.items():
            restored_count = details["tables"].get(table)
            low = min(before.get(label, 0), after.get(label, 0))
            high = max(before.get(label, 0), after.get(label, 0))
            details["key_tables"][label] = {"restored": restored_count, "expected_between": [low, high]}
            if label in before and (restored_count is None or not low <= restored_count <= high):
                problems.append(f"{table}: {restored_count} rows, expected {low}..{high}")
        verification.details = details
        verification.tables_checked = len(details["tables"])
        if problems:
            raise BackupError("restored copy differs from the backup's record: " + "; ".join(problems))
        verification.status = RestoreVerification.Status.SUCCEEDED
    except BackupError as exc:
        verification.status, verification.error = RestoreVerification.Status.FAILED, exc.message
        logger.error("restore drill failed id=%s: %s", verification.pk, exc.message)
    verification.finished_at = timezone.now()
    verification.save()
    metrics.BACKUP_RUNS.labels(kind="verify", status=verification.status).inc()
    return verification


def _tables(cursor, vendor: str) -> list[str]:
    if vendor == "sqlite":
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1")
    else:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    return [row[0] for row in cursor.fetchall()]


def wal_archive_check(*, engine: BackupEngine | None = None) -> dict:
    """Alert (log + metric) when WAL archiving fails or falls behind."""
    engine = engine or get_engine()
    status = engine.archive_status()
    metrics.WAL_ARCHIVE_OK.set(1 if status["ok"] else 0)
    if status["segments_behind"] is not None:
        metrics.WAL_ARCHIVE_SEGMENTS_BEHIND.set(status["segments_behind"])
    if not status["ok"]:
        logger.error(
            "WAL archiving needs attention: failing=%s segments_behind=%s last_failed_wal=%s",
            status["failing"],
            status["segments_behind"],
            status["last_failed_wal"],
        )
    return status


# --- per-tenant exports -------------------------------------------------------------------------


def record_tenant_export_event(*, export: TenantExport, name: str) -> None:
    """The one place that announces backup.tenant_export.completed|failed.

    An export covers every tenant, so every tenant subscribed to it hears of it (in one transaction).
    """
    from tenants.models import Tenant
    from webhooks.selectors import tenant_ids_subscribed
    from webhooks.services import event_record

    logger.info("event %s export=%s status=%s", name, export.pk, export.status)
    data = {
        "export": {
            "id": str(export.pk), "object_key": export.location, "size_bytes": export.size_bytes,
            "error": export.error[:2000],
        }
    }  # fmt: skip
    with transaction.atomic():
        for tenant_id in tenant_ids_subscribed(event_type=name):
            event_record(tenant=Tenant(pk=tenant_id), type=name, data=data)


def tenant_export_create(*, trigger: str = Trigger.COMMAND, progress: Progress = _noop) -> TenantExport:
    """Export every row of every tenant from ONE snapshot into a versioned archive (S3 or local)."""
    export = TenantExport.objects.create(trigger=trigger)
    try:
        with tempfile.TemporaryDirectory(prefix="tenant-export-") as workdir:
            archive = Path(workdir) / "export.tar.gz"
            manifest = _write_export(archive, export=export, progress=progress)
            export.sha256 = _sha256_file(archive)
            export.size_bytes = archive.stat().st_size
            key = f"tenant-exports/{export.started_at:%Y/%m/%d}/{export.pk}.tar.gz"
            progress("upload", 0, 1)
            export.location = export_put(key=key, path=archive)
            progress("upload", 1, 1)
        export.schema_version = manifest["schema_version"]
        export.tenant_count = len(manifest["tenants"])
        export.row_count = sum(sum(t["rows"].values()) for t in manifest["tenants"].values())
        export.status = TenantExport.Status.SUCCEEDED
    except (BackupError, OSError) as exc:
        export.status = TenantExport.Status.FAILED
        export.error = exc.message if isinstance(exc, BackupError) else str(exc)
        logger.error("tenant export failed id=%s: %s", export.pk, export.error)
    export.finished_at = timezone.now()
    with transaction.atomic():
        export.save()
        record_tenant_export_event(
            export=export,
            name="backup.tenant_export.completed" if export.status == "succeeded" else "backup.tenant_export.failed",
        )
    if export.status == TenantExport.Status.FAILED:
        raise BackupError(f"tenant export failed: {export.error}", code="export_failed")
    return export


def _write_export(
    archive: Path, *, export: TenantExport, progress: Progress, tenant_ids: list[str] | None = None
) -> dict:
    owned = tenant_owned_models()
    encoding = ENCODING_COPY if connection.vendor == "postgresql" else ENCODING_JSON
    tables_by_tenant: dict[str, dict[str, list]] = defaultdict(dict)
    # One transaction, one snapshot: every table is read as of the same instant.
    with transaction.atomic(using="default"):
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        for index, item in enumerate(owned):
            queryset = (
                item.model._base_manager.using("default")
                .annotate(export_tenant_key=F(item.tenant_path))
                .order_by()
                .values_list(*item.attnames, "export_tenant_key")
            )
            if tenant_ids is not None:
                queryset = queryset.filter(**{f"{item.tenant_path}__in": tenant_ids})
            reader = _read_copy if encoding == ENCODING_COPY else _read_json
            for tenant_id, rows in reader(queryset).items():
                tables_by_tenant[tenant_id][item.label] = rows
            progress("read", index + 1, len(owned))
    version = schema_version(owned)
    manifest = {
        "format": EXPORT_FORMAT,
        "schema_version": version,
        "encoding": encoding,
        "export_id": str(export.pk),
        "created_at": export.started_at.isoformat(),
        "snapshot": "repeatable read" if connection.vendor == "postgresql" else "sqlite transaction",
        "tables": {item.label: {"columns": item.attnames, "tenant_path": item.tenant_path} for item in owned},
        "tenants": {},
    }
    extension = "copy" if encoding == ENCODING_COPY else "json"
    # One file per tenant (its tables one after another; the manifest has each table's offset and
    # length): a tar member costs more than the rows of a small tenant. USTAR: no PAX headers needed.
    with tarfile.open(archive, mode="w:gz", compresslevel=1, format=tarfile.USTAR_FORMAT) as tar:
        total = len(tables_by_tenant)
        for done, (tenant_id, tables) in enumerate(sorted(tables_by_tenant.items()), start=1):
            parts, sections, offset = [], {}, 0
            for label, rows in tables.items():
                if encoding == ENCODING_COPY:
                    body = b"\n".join(rows) + b"\n"
                else:
                    body = json.dumps(rows, cls=ExportJSONEncoder, separators=(",", ":")).encode()
                parts.append(body)
                sections[label] = {"offset": offset, "length": len(body), "rows": len(rows)}
                offset += len(body)
            content = b"".join(parts)
            name = f"tenants/{tenant_id}.{extension}"
            _add_member(tar, name, content)
            manifest["tenants"][tenant_id] = {
                "file": name,
                "sha256": hashlib.sha256(content).hexdigest(),
                "tables": sections,
                "rows": {label: section["rows"] for label, section in sections.items()},
            }
            if done % 100 == 0 or done == total:
                progress("write", done, total)
        _add_member(tar, "manifest.json", json.dumps(manifest, separators=(",", ":")).encode())
    return manifest


def _read_copy(queryset) -> dict[str, list[bytes]]:
    """PostgreSQL: COPY the query out in text format, exactly what COPY FROM reads back (no type loss)."""
    sql, params = queryset.query.sql_with_params()
    statement = connection.ops.compose_sql(sql, params)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY ({statement}) TO STDOUT") as copy:
            data = b"".join(bytes(block) for block in copy)
    grouped: dict[str, list[bytes]] = defaultdict(list)
    for line in data.split(b"\n"):
        if line:
            row, _, tenant_key = line.rpartition(b"\t")
            grouped[tenant_key.decode()].append(row)
    return grouped


def _read_json(queryset) -> dict[str, list[list]]:
    grouped: dict[str, list[list]] = defaultdict(list)
    for row in queryset.iterator(chunk_size=5000):
        grouped[str(row[-1])].append(list(row[:-1]))
    return grouped


def _add_member(tar: tarfile.TarFile, name: str, body: bytes) -> None:
    member = tarfile.TarInfo(name)
    member.size = len(body)
    member.mtime = int(time.time())
    tar.addfile(member, io.BytesIO(body))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_tenant_from_export(location: str, tenant_id: str) -> tuple[dict, dict[str, bytes]]:
    """The manifest and one tenant's files, refused on a schema-version or checksum mismatch."""
    with tempfile.TemporaryDirectory(prefix="tenant-restore-") as workdir:
        path = Path(workdir) / "export.tar.gz"
        export_fetch(location=location, path=path)
        try:
            with tarfile.open(path, mode="r:gz") as tar:
                manifest = json.loads(tar.extractfile("manifest.json").read())
                entry = manifest["tenants"].get(tenant_id)
                if entry is None:
                    raise BackupError(f"tenant {tenant_id} is not in this export", code="not_found")
                content = tar.extractfile(entry["file"]).read()
        except (tarfile.TarError, KeyError, EOFError, OSError, json.JSONDecodeError) as exc:
            raise BackupError(f"the export archive is unreadable: {exc}", code="export_corrupt") from exc
    if manifest.get("format") != EXPORT_FORMAT:
        raise BackupError(f"export format {manifest.get('format')} is not {EXPORT_FORMAT}", code="schema_mismatch")
    current = schema_version()
    if manifest.get("schema_version") != current:
        raise BackupError(
            f"export schema version {manifest.get('schema_version')} does not match this database's {current}",
            code="schema_mismatch",
        )
    wanted = ENCODING_COPY if connection.vendor == "postgresql" else ENCODING_JSON
    if manifest.get("encoding") != wanted:
        raise BackupError(f"export encoding {manifest.get('encoding')} cannot be restored into {connection.vendor}")
    if hashlib.sha256(content).hexdigest() != entry["sha256"]:
        raise BackupError(f"checksum mismatch for {entry['file']}: the export is corrupted", code="export_corrupt")
    bodies = {
        label: content[section["offset"] : section["offset"] + section["length"]]
        for label, section in entry["tables"].items()
    }
    return manifest, bodies


def tenant_export_restore(*, location: str, tenant_id: str, dry_run: bool = False) -> dict:
    """Replace exactly one tenant's rows by those of an export, in one transaction.

    Returns {table: {"current": n, "in_export": m}}; a dry run changes nothing. Other tenants' rows are
    never touched: every delete is filtered by the tenant's path.
    """
    tenant_id = str(tenant_id)
    manifest, bodies = _read_tenant_from_export(location, tenant_id)
    owned = tenant_owned_models()
    counts = manifest["tenants"][tenant_id]["rows"]
    plan = {}
    for item in owned:
        current = item.model._base_manager.using("default").filter(**{item.tenant_path: tenant_id}).count()
        plan[item.label] = {"current": current, "in_export": counts.get(item.label, 0)}
    if dry_run:
        return plan
    from apikeys.services import apikeys_reconcile_after_restore, apikeys_state

    try:
        with transaction.atomic():
            Tenant.objects.select_for_update().filter(pk=tenant_id).first()
            keys_before = apikeys_state(tenant_id=tenant_id)
            # Foreign keys are deferred to commit, so the order of deletes and inserts is free.
            for item in reversed(owned):
                item.model._base_manager.using("default").filter(**{item.tenant_path: tenant_id})._raw_delete("default")
            for item in owned:
                if item.label in bodies:
                    columns = manifest["tables"][item.label]["columns"]
                    _load_rows(item, columns, bodies[item.label], manifest["encoding"])
            # An export is older than the keys' state: a restore never revives a revoked key, and the
            # gateway's cached records follow the restore as soon as it commits.
            apikeys_reconcile_after_restore(tenant_id=tenant_id, before=keys_before)
            tenant = Tenant.objects.filter(pk=tenant_id).first()
            if tenant is not None:
                transaction.on_commit(lambda: publish_tenant_access(tenant))
    except IntegrityError as exc:
        raise ApplicationError(
            "conflict", f"restoring tenant {tenant_id} conflicts with current data (e.g. a hostname now taken): {exc}"
        ) from exc
    logger.info("tenant restored id=%s from %s", tenant_id, location)
    return plan


def _load_rows(item: TenantOwnedModel, columns: list[str], body: bytes, encoding: str) -> None:
    fields = {field.attname: field for field in item.model._meta.concrete_fields}
    chosen = [fields[name] for name in columns]
    table = connection.ops.quote_name(item.model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(field.column) for field in chosen)
    with connection.cursor() as cursor:
        if encoding == ENCODING_COPY:
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                copy.write(body)
            return
        # Raw INSERT, not bulk_create: auto_now fields must keep their exported values.
        values = [
            [field.get_db_prep_save(field.to_python(v), connection) for field, v in zip(chosen, row, strict=True)]
            for row in json.loads(body)
        ]
        placeholders = ", ".join(["%s"] * len(chosen))
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders})", values)  # noqa: S608
