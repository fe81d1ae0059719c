"""The restore of one tenant from a tenant export (backups/tenant_exports.py writes them).

A restore is checked before anything in the archive is read (its size and sha256 against the export's
record, then the whole gzip stream), and is tried for real inside a transaction: the tenant's rows are
replaced, every row that would collide with another tenant's data (a hostname or slug taken since) is
found with INSERT ... ON CONFLICT DO NOTHING, foreign keys are checked, and the transaction is rolled
back for a dry run or when anything conflicts. So the dry run predicts exactly what the restore does.
"""

import gzip
import hashlib
import json
import logging
import tarfile
import tempfile
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.exceptions import ApplicationError
from core.objectstore import ObjectNotFound, ObjectStorageError, object_store
from tenants.access import publish_tenant_access
from tenants.models import Tenant

from .engines.base import BackupError
from .models import TenantExport
from .tenant_data import TenantOwnedModel, schema_version, tenant_owned_models
from .tenant_exports import ENCODING_COPY, ENCODING_JSON, EXPORT_FORMAT, sha256_file

logger = logging.getLogger(__name__)

# How long a dry run allows the restore it showed (the admin's signed step uses the same bound).
RESTORE_DRY_RUN_VALID_SECONDS = 30 * 60
# Rows listed by name per table in a restore plan (the counts are always complete).
PLAN_ROWS_LISTED = 50


def export_resolve(value: str) -> TenantExport:
    """A successful export, by its id or its location (s3://... or a path)."""
    value = (value or "").strip()
    try:
        found = TenantExport.objects.filter(pk=uuid.UUID(value)).first()
    except ValueError:
        found = TenantExport.objects.filter(location=value).first() if value else None
    if found is None:
        raise ApplicationError("not_found", f"no tenant export {value}", fields={"export": [value]})
    if found.status != TenantExport.Status.SUCCEEDED:
        raise ApplicationError("invalid", f"tenant export {found.pk} is {found.status}, not a usable export")
    return found


def tenant_resolve(value: str) -> str:
    """A tenant's id from its slug or its id (an id also when the tenant was deleted since the export)."""
    value = (value or "").strip()
    tenant = Tenant.objects.filter(slug=value).only("pk").first()
    if tenant is not None:
        return str(tenant.pk)
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise ApplicationError(
            "not_found", f"no tenant has the slug {value!r}; give a tenant's slug or id", fields={"tenant": [value]}
        ) from exc


@dataclass
class RestorePlan:
    """What restoring one tenant does, per table: rows now, rows in the export, rows deleted for good
    (created since the export), and every conflict that makes the restore impossible."""

    export_id: str
    tenant_id: str
    tables: dict[str, dict] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)

    @property
    def deleted_count(self) -> int:
        return sum(table["delete"] for table in self.tables.values())

    def as_dict(self) -> dict:
        return {"export": self.export_id, "tenant": self.tenant_id, "tables": self.tables, "conflicts": self.conflicts}


class _RolledBack(Exception):
    def __init__(self, plan: RestorePlan):
        self.plan = plan


def tenant_export_restore(
    *, export: TenantExport, tenant_id: str, dry_run: bool = False, actor=None, reason: str = ""
) -> RestorePlan:
    """Replace exactly one tenant's rows by those of an export, in one transaction, and audit it.

    The dry run and the restore run the same steps; the dry run (and a restore with conflicts) is rolled
    back. A restore is refused unless the same actor dry-ran it (same export, same tenant) within
    RESTORE_DRY_RUN_VALID_SECONDS, whichever surface asks (admin, command line). A restore with conflicts
    is refused with one ApplicationError listing them. Other tenants' rows are never touched: every
    delete is filtered by the tenant's path.
    """
    from console.models import AuditLogEntry
    from console.services import actor_name, audit_record

    tenant_id = str(tenant_id)
    target = Tenant.objects.filter(pk=tenant_id).first() or export

    def audit(outcome, detail):
        audit_record(actor=actor, action="tenant.restore", target=target, reason=reason, outcome=outcome,
                     detail={"export": str(export.pk), "tenant": tenant_id, **detail})  # fmt: skip

    try:
        manifest, bodies = _read_tenant_from_export(export, tenant_id)
        if not dry_run and not _dry_run_recorded(export, tenant_id, actor_name(actor)):
            raise ApplicationError(
                "dry_run_required",
                "Run the dry run for this tenant first (or again: it is valid for "
                f"{RESTORE_DRY_RUN_VALID_SECONDS // 60} minutes).",
            )
        with transaction.atomic():
            plan = _restore_in_transaction(export, manifest, bodies, tenant_id)
            if dry_run or plan.conflicts:
                raise _RolledBack(plan)
            audit(AuditLogEntry.Outcome.DONE, {"plan": plan.as_dict()})
            tenant = Tenant.objects.filter(pk=tenant_id).first()
            if tenant is not None:
                transaction.on_commit(lambda: publish_tenant_access(tenant))
    except _RolledBack as rolled_back:
        plan = rolled_back.plan
        if dry_run:
            audit(AuditLogEntry.Outcome.DRY_RUN, {"plan": plan.as_dict()})
            return plan
        message = f"restoring tenant {tenant_id} is refused: " + "; ".join(plan.conflicts)
        audit(AuditLogEntry.Outcome.REFUSED, {"error": message[:2000], "plan": plan.as_dict()})
        raise ApplicationError("conflict", message) from None
    except ApplicationError as exc:
        audit(AuditLogEntry.Outcome.REFUSED, {"error": exc.message[:2000]})
        raise
    logger.info("tenant restored id=%s from export %s", tenant_id, export.pk)
    return plan


def _dry_run_recorded(export: TenantExport, tenant_id: str, actor_username: str) -> bool:
    from console.models import AuditLogEntry

    return AuditLogEntry.objects.filter(
        action="tenant.restore", outcome=AuditLogEntry.Outcome.DRY_RUN, actor_username=actor_username,
        detail__export=str(export.pk), detail__tenant=tenant_id,
        created_at__gte=timezone.now() - timedelta(seconds=RESTORE_DRY_RUN_VALID_SECONDS),
    ).exists()  # fmt: skip


def _restore_in_transaction(export: TenantExport, manifest: dict, bodies: dict[str, bytes], tenant_id: str):
    from apikeys.services import apikeys_reconcile_after_restore, apikeys_state

    owned = tenant_owned_models()
    Tenant.objects.select_for_update().filter(pk=tenant_id).first()
    keys_before = apikeys_state(tenant_id=tenant_id)
    plan = RestorePlan(export_id=str(export.pk), tenant_id=tenant_id)
    counts = manifest["tenants"][tenant_id]["rows"]
    encoding = manifest["encoding"]
    exported_pks = {}
    for item in owned:
        columns = manifest["tables"].get(item.label, {}).get("columns", item.attnames)
        exported_pks[item.label] = _exported_pks(item, columns, bodies.get(item.label), encoding)
        current = item.model._base_manager.using("default").filter(**{item.tenant_path: tenant_id})
        gone = current.exclude(pk__in=exported_pks[item.label]) if exported_pks[item.label] else current
        plan.tables[item.label] = {
            "current": current.count(),
            "in_export": counts.get(item.label, 0),
            # Rows created since the export: the restore deletes them for good.
            "delete": gone.count(),
            "delete_rows": [f"{row.pk}: {row}"[:200] for row in gone[:PLAN_ROWS_LISTED]],
        }
    # Foreign keys are deferred to commit, so the order of deletes and inserts is free.
    for item in reversed(owned):
        item.model._base_manager.using("default").filter(**{item.tenant_path: tenant_id})._raw_delete("default")
    for index, item in enumerate(owned):
        if item.label in bodies:
            columns = manifest["tables"][item.label]["columns"]
            inserted = _insert_rows(item, columns, bodies[item.label], encoding, temp_name=f"tenant_restore_{index}")
            for pk in sorted(exported_pks[item.label] - inserted)[:PLAN_ROWS_LISTED]:
                plan.conflicts.append(_describe_conflict(item, pk, columns, temp_name=f"tenant_restore_{index}"))
            _drop_temp(f"tenant_restore_{index}")
    # An export is older than the keys' state: a restore never revives a revoked key, and the gateway's
    # cached records follow the restore as soon as it commits (nothing is published for a rollback).
    apikeys_reconcile_after_restore(tenant_id=tenant_id, before=keys_before)
    if not plan.conflicts:
        try:
            with transaction.atomic():
                connection.check_constraints()
        except IntegrityError as exc:
            plan.conflicts.append("a restored row refers to data that no longer exists: " + _one_line(exc))
    return plan


def _one_line(exc: Exception) -> str:
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())[:500]


def _exported_pks(item: TenantOwnedModel, columns: list[str], body: bytes | None, encoding: str) -> set[str]:
    if not body:
        return set()
    index = columns.index(item.model._meta.pk.attname)
    if encoding == ENCODING_COPY:
        # The text format escapes tabs inside values, so a tab always separates columns.
        return {_copy_unescape(line.split(b"\t")[index]) for line in body.split(b"\n") if line}
    return {str(row[index]) for row in json.loads(body)}


def _copy_unescape(value: bytes) -> str:
    return value.decode().replace("\\\\", "\\")


def _insert_rows(item: TenantOwnedModel, columns: list[str], body: bytes, encoding: str, *, temp_name: str):
    """Load the rows into a temporary copy of the table, then into the table, skipping each row that
    collides with a unique key (any: a column, an expression, a partial index); returns the pks inserted."""
    fields = {f.attname: f for f in item.model._meta.concrete_fields}
    chosen = [fields[name] for name in columns]
    quote = connection.ops.quote_name
    table = quote(item.model._meta.db_table)
    names = ", ".join(quote(f.column) for f in chosen)
    pk = quote(item.model._meta.pk.column)
    with connection.cursor() as cursor:
        if encoding == ENCODING_COPY:
            cursor.execute(f"CREATE TEMPORARY TABLE {temp_name} (LIKE {table}) ON COMMIT DROP")
            with cursor.cursor.copy(f"COPY {temp_name} ({names}) FROM STDIN") as copy:
                copy.write(body)
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {temp_name} ON CONFLICT DO NOTHING RETURNING {pk}"  # noqa: S608
            )
        else:
            cursor.execute(f"CREATE TEMPORARY TABLE {temp_name} AS SELECT * FROM {table} WHERE 0")  # noqa: S608
            # Raw INSERT, not bulk_create: auto_now fields must keep their exported values.
            values = [
                [f.get_db_prep_save(f.to_python(v), connection) for f, v in zip(chosen, row, strict=True)]
                for row in json.loads(body)
            ]
            placeholders = ", ".join(["%s"] * len(chosen))
            cursor.executemany(f"INSERT INTO {temp_name} ({names}) VALUES ({placeholders})", values)  # noqa: S608
            # SQLite needs the WHERE to read ON CONFLICT as the INSERT's clause, not a join's.
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {temp_name} WHERE true "  # noqa: S608
                f"ON CONFLICT DO NOTHING RETURNING {pk}"
            )
        return {str(item.model._meta.pk.to_python(row[0])) for row in cursor.fetchall()}


def _drop_temp(temp_name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {temp_name}")


def _describe_conflict(item: TenantOwnedModel, pk: str, columns: list[str], *, temp_name: str) -> str:
    """Which row of the export cannot come back, and Django's own words for what it collides with."""
    quote = connection.ops.quote_name
    fields = {f.attname: f for f in item.model._meta.concrete_fields}
    names = ", ".join(quote(fields[name].column) for name in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {names} FROM {temp_name} WHERE {quote(item.model._meta.pk.column)} = %s",  # noqa: S608
            [item.model._meta.pk.get_db_prep_value(item.model._meta.pk.to_python(pk), connection)],
        )
        row = cursor.fetchone()
    instance = item.model(**{name: fields[name].to_python(value) for name, value in zip(columns, row, strict=True)})
    problems = []
    for check in (instance.validate_unique, instance.validate_constraints):
        try:
            check()
        except ValidationError as exc:
            problems += exc.messages
    what = "; ".join(dict.fromkeys(problems)) or f"it collides with a unique index of {item.model._meta.db_table}"
    return f"{item.label} {pk} ({str(instance)[:100]}): {what}"


def _export_fetch(*, location: str, path: Path) -> None:
    store = object_store("tenant_exports")
    key = store.key_from_location(location)
    if key is None:
        raise BackupError(f"export {location} is not in the tenant export storage", code="not_found")
    try:
        with open(path, "wb") as archive:
            store.download(key, archive)
    except ObjectNotFound as exc:
        raise BackupError(f"export file {location} does not exist", code="not_found") from exc
    except ObjectStorageError as exc:
        raise BackupError(f"downloading {location} failed: {exc}", code="storage_unavailable") from exc


def _archive_corrupt(export: TenantExport, detail: str) -> BackupError:
    return BackupError(f"tenant export {export.pk} is corrupted: {detail}; nothing was restored", code="export_corrupt")


def _fetch_verified(export: TenantExport, path: Path) -> None:
    """The archive, refused unless its size and sha256 match the export's record and its gzip stream is
    whole (CRC and length trailer): checked before a byte of it is interpreted."""
    _export_fetch(location=export.location, path=path)
    size = path.stat().st_size
    if export.size_bytes and size != export.size_bytes:
        raise _archive_corrupt(export, f"{size} bytes, the export recorded {export.size_bytes}")
    if not export.sha256:
        raise _archive_corrupt(export, "no checksum was recorded for it")
    digest = sha256_file(path)
    if digest != export.sha256:
        raise _archive_corrupt(export, f"sha256 {digest} does not match the recorded {export.sha256}")
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(1 << 20):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        raise _archive_corrupt(export, f"its gzip stream is damaged ({exc})") from exc


def _read_tenant_from_export(export: TenantExport, tenant_id: str) -> tuple[dict, dict[str, bytes]]:
    """The manifest and one tenant's tables, refused on any corruption, schema-version or checksum mismatch."""
    with tempfile.TemporaryDirectory(prefix="tenant-restore-") as workdir:
        path = Path(workdir) / "export.tar.gz"
        _fetch_verified(export, path)
        try:
            with tarfile.open(path, mode="r:gz") as tar:
                manifest = json.loads(tar.extractfile("manifest.json").read())
                entry = manifest["tenants"].get(tenant_id)
                if entry is None:
                    raise BackupError(f"tenant {tenant_id} is not in this export", code="not_found")
                content = tar.extractfile(entry["file"]).read()
        except BackupError:
            raise
        except (
            tarfile.TarError,
            KeyError,
            EOFError,
            OSError,
            zlib.error,
            ValueError,
            TypeError,
            AttributeError,
        ) as exc:
            raise _archive_corrupt(export, f"unreadable ({exc.__class__.__name__}: {exc})") from exc
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
