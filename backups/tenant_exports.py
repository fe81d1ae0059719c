"""Per-tenant exports: every tenant's rows from one snapshot, in one versioned archive (its format is
defined here: the manifest, one file per tenant, COPY text or JSON rows). The restore of one tenant from
such an archive is in backups/tenant_restore.py.
"""

import hashlib
import io
import json
import logging
import tarfile
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from datetime import time as dt_time
from pathlib import Path

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core.objectstore import ObjectPut, ObjectStorageError, object_store
from tenants.models import Tenant

from .engines.base import BackupError
from .leases import lease_fields, lease_held
from .models import TenantExport, Trigger
from .tenant_data import schema_version, tenant_owned_models

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


# --- exports ------------------------------------------------------------------------------------


def record_tenant_export_event(*, export: TenantExport, name: str) -> None:
    """The one place that announces backup.tenant_export.completed|failed.

    An export covers every tenant, so every tenant subscribed to it hears of it (in one transaction).
    """
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
    export = TenantExport.objects.create(trigger=trigger, **lease_fields())
    try:
        with lease_held(export), tempfile.TemporaryDirectory(prefix="tenant-export-") as workdir:
            archive = Path(workdir) / "export.tar.gz"
            manifest = _write_export(archive, export=export, progress=progress)
            export.sha256 = sha256_file(archive)
            export.size_bytes = archive.stat().st_size
            key = f"tenant-exports/{export.started_at:%Y/%m/%d}/{export.pk}.tar.gz"
            progress("upload", 0, 1)
            export.location = _export_put(key=key, path=archive)
            progress("upload", 1, 1)
        export.schema_version = manifest["schema_version"]
        export.tenant_count = len(manifest["tenants"])
        export.row_count = sum(sum(t["rows"].values()) for t in manifest["tenants"].values())
        export.status = TenantExport.Status.SUCCEEDED
    except Exception as exc:  # noqa: BLE001 - whatever failed, the record says failed, with the reason
        export.status = TenantExport.Status.FAILED
        export.error = exc.message if isinstance(exc, BackupError) else f"{type(exc).__name__}: {exc}"
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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _export_put(*, key: str, path: Path) -> str:
    """Store a finished archive in the tenant_exports storage; returns its location."""
    store = object_store("tenant_exports")
    try:
        with open(path, "rb") as archive:
            store.put_file(
                ObjectPut(key=key, body=b"", content_type="application/gzip", cache_control="no-store"), archive
            )
    except ObjectStorageError as exc:
        where = "S3" if store.location(key).startswith("s3://") else "the export folder"
        raise BackupError(f"uploading the tenant export to {where} failed: {exc}", code="storage_unavailable") from exc
    return store.location(key)
