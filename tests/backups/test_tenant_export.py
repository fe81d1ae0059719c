"""Per-tenant export from one snapshot and restore of exactly one tenant, on the real stack (S3 on moto)."""

import hashlib
import io
import json
import tarfile
from datetime import timedelta

import boto3
import pytest
from django.conf import settings
from django.utils import timezone

from backups import tenant_exports as services
from backups import tenant_restore
from backups.engines.base import BackupError
from backups.models import TenantExport
from backups.tenant_data import schema_version, tenant_owned_models
from console.models import AuditLogEntry
from core.exceptions import ApplicationError
from tenants import services as tenant_services
from tenants.models import Deployment, Hostname, Tenant, Website

pytestmark = pytest.mark.django_db(transaction=True)


def _s3():
    return boto3.client("s3", endpoint_url=settings.S3_ENDPOINT_URL, region_name=settings.AWS_DEFAULT_REGION)


def _tenant_rows(tenant_id) -> dict:
    """Every row a tenant owns, as plain values, for before/after comparisons."""
    rows = {}
    for item in tenant_owned_models():
        queryset = item.model._base_manager.filter(**{item.tenant_path: tenant_id}).order_by("pk")
        rows[item.label] = list(queryset.values_list(*item.attnames))
    return rows


@pytest.fixture
def two_tenants():
    a = tenant_services.tenant_create(name="Alpha", slug="alpha", tier="starter")
    b = tenant_services.tenant_create(name="Beta", slug="beta")
    for tenant, host in ((a, "alpha"), (b, "beta")):
        site = tenant_services.website_create(
            tenant=tenant, name="Main", hostnames=[f"www.{host}.test", f"{host}.test"]
        )
        Deployment.objects.create(website=site, number=1, description="first")
    return a, b


def test_discovers_every_tenant_owned_model():
    paths = {item.label: item.tenant_path for item in tenant_owned_models()}
    assert paths["tenants.tenant"] == "pk"
    assert paths["tenants.website"] == "tenant"
    assert paths["tenants.hostname"] == "website__tenant"
    assert paths["tenants.deployment"] == "website__tenant"
    assert not any(label.startswith("backups.") or label.startswith("auth.") for label in paths)


def test_export_is_one_snapshot_and_restores_one_tenant_only(two_tenants, raw_connection):
    a, b = two_tenants
    original_a = _tenant_rows(a.pk)
    concurrent = []

    def progress(stage, done, total):
        # After the first table is read, another client changes both tenants and commits.
        if stage == "read" and done == 1 and not concurrent:
            with raw_connection.cursor() as cursor:
                cursor.execute("DELETE FROM tenants_hostname WHERE hostname = 'alpha.test'")
                cursor.execute("UPDATE tenants_deployment SET description = 'changed' WHERE number = 1")
            concurrent.append(True)

    export = services.tenant_export_create(progress=progress)
    assert concurrent
    assert export.status == TenantExport.Status.SUCCEEDED
    assert export.location.startswith(f"s3://{settings.S3_BUCKET}/tenant-exports/")
    # per tenant: the tenant, its website, two hostnames, a deployment, and the website.created event
    # of the webhooks outbox (every tenant-owned table is exported)
    assert export.tenant_count == 2 and export.row_count == 2 * (1 + 1 + 2 + 1 + 1)
    assert export.schema_version == schema_version()

    # The snapshot was taken before the concurrent writes: the export holds the original rows.
    manifest, bodies = tenant_restore._read_tenant_from_export(export, str(a.pk))
    data = {
        "tables": {label: [line.split("\t") for line in body.decode().splitlines()] for label, body in bodies.items()}
    }
    assert {table: n for table, n in manifest["tenants"][str(a.pk)]["rows"].items() if n} == {
        "tenants.tenant": 1,
        "tenants.website": 1,
        "tenants.hostname": 2,
        "tenants.deployment": 1,
        "webhooks.event": 1,
    }
    columns = manifest["tables"]["tenants.deployment"]["columns"]
    [deployment] = data["tables"]["tenants.deployment"]
    assert deployment[columns.index("description")] == "first"
    columns = manifest["tables"]["tenants.hostname"]["columns"]
    hostnames = sorted(row[columns.index("hostname")] for row in data["tables"]["tenants.hostname"])
    assert hostnames == ["alpha.test", "www.alpha.test"]

    # Both tenants change after the export.
    tenant_services.tenant_update(tenant=a, name="Alpha renamed")
    tenant_services.website_create(tenant=a, name="Second", hostnames=["second.alpha.test"])
    tenant_services.tenant_update(tenant=b, name="Beta renamed")
    rows_b_before = _tenant_rows(b.pk)

    second = Website.objects.get(tenant=a, name="Second")
    plan = tenant_restore.tenant_export_restore(export=export, tenant_id=a.pk, dry_run=True)
    assert not plan.conflicts
    website, hostname = plan.tables["tenants.website"], plan.tables["tenants.hostname"]
    assert (website["current"], website["in_export"], website["delete"]) == (2, 1, 1)
    # The dry run names what the restore deletes for good: the rows created since the export.
    assert website["delete_rows"] == [f"{second.pk}: {second}"]
    assert (hostname["current"], hostname["in_export"], hostname["delete"]) == (2, 2, 1)
    assert [row.split(": ", 1)[1] for row in hostname["delete_rows"]] == ["second.alpha.test"]
    assert Website.objects.filter(tenant=a).count() == 2  # dry run changed nothing

    done = tenant_restore.tenant_export_restore(export=export, tenant_id=a.pk)
    assert done.tables == plan.tables
    assert _tenant_rows(a.pk) == original_a
    assert Tenant.objects.get(pk=a.pk).name == "Alpha"
    assert _tenant_rows(b.pk) == rows_b_before  # the other tenant is untouched
    assert Tenant.objects.get(pk=b.pk).name == "Beta renamed"
    assert Hostname.objects.filter(hostname="beta.test").exists()


def _rewrite_archive(export: TenantExport, mutate, *, record_checksum: bool = False) -> None:
    """Rewrite the export's archive in place; with record_checksum the export's record is updated to it
    (a well-formed archive whose content is wrong, which only the checks inside can catch)."""
    bucket, key = export.location[5:].split("/", 1)
    body = _s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    members = {}
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        for member in tar.getmembers():
            members[member.name] = tar.extractfile(member).read()
    mutate(members)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    _put(export, out.getvalue(), record_checksum=record_checksum)


def _put(export: TenantExport, body: bytes, *, record_checksum: bool = False) -> None:
    bucket, key = export.location[5:].split("/", 1)
    _s3().put_object(Bucket=bucket, Key=key, Body=body)
    if record_checksum:
        TenantExport.objects.filter(pk=export.pk).update(sha256=hashlib.sha256(body).hexdigest(), size_bytes=len(body))
        export.refresh_from_db()


def test_corrupted_tenant_file_is_refused_by_its_checksum(two_tenants):
    a, _ = two_tenants
    export = services.tenant_export_create()
    name = f"tenants/{a.pk}.copy"

    def corrupt(members):
        members[name] = members[name].replace(b"Alpha", b"Evil!")

    _rewrite_archive(export, corrupt, record_checksum=True)
    tenant_services.tenant_update(tenant=a, name="Alpha now")
    with pytest.raises(BackupError, match="checksum mismatch"):
        tenant_restore.tenant_export_restore(export=export, tenant_id=a.pk)
    assert Tenant.objects.get(pk=a.pk).name == "Alpha now"


def test_every_single_byte_flip_is_one_clear_error_and_restores_nothing(two_tenants):
    a, _ = two_tenants
    export = services.tenant_export_create()
    original = _s3().get_object(Bucket=settings.S3_BUCKET, Key=export.location.split("/", 3)[3])["Body"].read()
    tenant_services.tenant_update(tenant=a, name="Alpha now")
    rows_before = _tenant_rows(a.pk)
    # Every byte of the gzip header and trailer, and 40 spread over the compressed stream between.
    step = max(1, (len(original) - 20) // 40)
    positions = sorted({*range(12), *range(len(original) - 8, len(original)), *range(12, len(original) - 8, step)})
    for position in positions:
        flipped = bytearray(original)
        flipped[position] ^= 0x01
        _put(export, bytes(flipped))
        with pytest.raises(BackupError) as raised:
            tenant_restore.tenant_export_restore(export=export, tenant_id=a.pk)
        assert raised.value.code == "export_corrupt", (position, raised.value.message)
        assert "sha256" in raised.value.message
    assert _tenant_rows(a.pk) == rows_before


def test_a_damaged_gzip_stream_is_refused_before_the_archive_is_read(two_tenants):
    """With a record that matches the damaged file (e.g. an export whose upload was cut), the gzip stream
    check still refuses it: CRC, length trailer and truncation, each one clear error."""
    a, _ = two_tenants
    export = services.tenant_export_create()
    original = _s3().get_object(Bucket=settings.S3_BUCKET, Key=export.location.split("/", 3)[3])["Body"].read()
    for damaged in (original[:-4] + b"\0\0\0\0", original[: len(original) // 2], original[:10] + b"\xff" * 40):
        _put(export, damaged, record_checksum=True)
        with pytest.raises(BackupError) as raised:
            tenant_restore.tenant_export_restore(export=export, tenant_id=a.pk, dry_run=True)
        assert raised.value.code == "export_corrupt" and "gzip stream" in raised.value.message, raised.value.message


def test_other_schema_version_is_refused(two_tenants):
    a, _ = two_tenants
    export = services.tenant_export_create()

    def other_version(members):
        manifest = json.loads(members["manifest.json"])
        manifest["schema_version"] = "0000000000000000"
        members["manifest.json"] = json.dumps(manifest).encode()

    _rewrite_archive(export, other_version, record_checksum=True)
    with pytest.raises(BackupError, match="schema version 0000000000000000 does not match"):
        tenant_restore.tenant_export_restore(export=export, tenant_id=a.pk, dry_run=True)


def test_conflicts_are_predicted_by_the_dry_run_and_refuse_the_restore(two_tenants):
    a, b = two_tenants
    Hostname.objects.filter(website__tenant=a).update(status="verified", verified_at=timezone.now())
    export = services.tenant_export_create()
    # Since the export, tenant A gave up its verified hostname and its slug, and tenant B took both.
    Tenant.objects.filter(pk=a.pk).update(slug="alpha-renamed")
    Hostname.objects.filter(hostname="alpha.test").delete()
    site_b = Website.objects.get(tenant=b)
    Hostname.objects.create(website=site_b, hostname="alpha.test", status="verified", verified_at=timezone.now())
    Tenant.objects.filter(pk=b.pk).update(slug="alpha")
    rows_a, rows_b = _tenant_rows(a.pk), _tenant_rows(b.pk)

    plan = tenant_restore.tenant_export_restore(export=export, tenant_id=a.pk, dry_run=True, actor="ops (command line)")
    assert len(plan.conflicts) == 2, plan.conflicts
    slug, hostname = sorted(plan.conflicts)
    # A partial unique index (verified hostnames only) is found like any other.
    assert slug.startswith("tenants.hostname") and "hostname_verified_unique_ci" in slug and "(alpha.test)" in slug
    assert hostname.startswith(f"tenants.tenant {a.pk}") and "Slug already exists" in hostname
    with pytest.raises(ApplicationError) as refused:
        tenant_restore.tenant_export_restore(
            export=export, tenant_id=a.pk, actor="ops (command line)", reason="ticket 7"
        )
    assert refused.value.code == "conflict" and "is refused" in refused.value.message
    assert "hostname_verified_unique_ci" in refused.value.message and "Slug already exists" in refused.value.message
    assert _tenant_rows(a.pk) == rows_a and _tenant_rows(b.pk) == rows_b  # nothing changed
    outcomes = list(
        AuditLogEntry.objects.filter(action="tenant.restore").order_by("id").values_list("outcome", flat=True)
    )
    assert outcomes == ["dry_run", "refused"]
    refusal = AuditLogEntry.objects.filter(action="tenant.restore").order_by("id").last()
    assert refusal.actor_username == "ops (command line)" and refusal.reason == "ticket 7"


def test_a_row_referring_to_data_gone_since_is_a_conflict(two_tenants, django_user_model):
    from apikeys import services as key_services

    a, _ = two_tenants
    user = django_user_model.objects.create_user(username="creator", password="x-long-password-1")
    key_services.apikey_create(tenant=a, name="ci", scopes=["websites:read"], created_by=user)
    export = services.tenant_export_create()
    django_user_model.objects.filter(pk=user.pk).delete()  # the key's creator is gone since
    plan = tenant_restore.tenant_export_restore(export=export, tenant_id=a.pk, dry_run=True)
    assert len(plan.conflicts) == 1 and "no longer exists" in plan.conflicts[0] and "auth_user" in plan.conflicts[0]


def test_a_restore_without_the_actor_s_own_recent_dry_run_is_refused_and_audited(two_tenants):
    a, _ = two_tenants
    export = services.tenant_export_create()
    tenant_services.tenant_update(tenant=a, name="Alpha now")
    with pytest.raises(ApplicationError) as refused:
        tenant_restore.tenant_export_restore(export=export, tenant_id=a.pk, actor="ops", reason="ticket 8")
    assert refused.value.code == "dry_run_required"
    tenant_restore.tenant_export_restore(export=export, tenant_id=a.pk, dry_run=True, actor="someone else")
    with pytest.raises(ApplicationError, match="Run the dry run for this tenant first"):
        tenant_restore.tenant_export_restore(export=export, tenant_id=a.pk, actor="ops", reason="ticket 8")
    assert Tenant.objects.get(pk=a.pk).name == "Alpha now"  # refused: nothing changed

    tenant_restore.tenant_export_restore(export=export, tenant_id=a.pk, dry_run=True, actor="ops")
    AuditLogEntry.objects.filter(outcome="dry_run", actor_username="ops").update(
        created_at=timezone.now() - timedelta(seconds=tenant_restore.RESTORE_DRY_RUN_VALID_SECONDS + 1)
    )
    with pytest.raises(ApplicationError, match="Run the dry run for this tenant first"):
        tenant_restore.tenant_export_restore(export=export, tenant_id=a.pk, actor="ops", reason="ticket 8")

    tenant_restore.tenant_export_restore(export=export, tenant_id=a.pk, dry_run=True, actor="ops")
    tenant_restore.tenant_export_restore(export=export, tenant_id=a.pk, actor="ops", reason="ticket 8")
    assert Tenant.objects.get(pk=a.pk).name == "Alpha"
    outcomes = list(AuditLogEntry.objects.filter(actor_username="ops").order_by("id").values_list("outcome", flat=True))
    assert outcomes == ["refused", "refused", "dry_run", "refused", "dry_run", "done"]


def test_unknown_tenant_and_unreachable_storage_are_clear_errors(two_tenants, settings):
    export = services.tenant_export_create()
    with pytest.raises(BackupError, match="is not in this export"):
        tenant_restore.tenant_export_restore(export=export, tenant_id="00000000-0000-0000-0000-000000000000")
    exports = settings.OBJECT_STORAGES["tenant_exports"]
    settings.OBJECT_STORAGES = {
        **settings.OBJECT_STORAGES,
        # nothing listens on the discard port
        "tenant_exports": {**exports, "OPTIONS": {**exports["OPTIONS"], "endpoint_url": "http://127.0.0.1:9"}},
    }
    with pytest.raises(BackupError, match="tenant export failed: uploading the tenant export to S3 failed"):
        services.tenant_export_create()
    failed = TenantExport.objects.filter(status=TenantExport.Status.FAILED).get()
    assert "S3" in failed.error and failed.finished_at


def test_embedded_mode_writes_exports_to_the_local_folder(two_tenants, settings, tmp_path):
    a, _ = two_tenants
    settings.OBJECT_STORAGES = {
        **settings.OBJECT_STORAGES,
        "tenant_exports": {
            "BACKEND": "core.objectstore.LocalObjectStore",
            "OPTIONS": {"root": str(tmp_path / "exports")},
        },
    }
    export = services.tenant_export_create()
    assert export.location.startswith(str(tmp_path / "exports"))
    plan = tenant_restore.tenant_export_restore(export=export, tenant_id=a.pk, dry_run=True)
    assert plan.tables["tenants.hostname"]["current"] == plan.tables["tenants.hostname"]["in_export"] == 2


def test_resolve_tenant_by_slug_or_id_and_export_by_id_or_location(two_tenants):
    a, _ = two_tenants
    export = services.tenant_export_create()
    assert tenant_restore.tenant_resolve("alpha") == tenant_restore.tenant_resolve(f" {a.pk} ") == str(a.pk)
    with pytest.raises(ApplicationError, match="no tenant has the slug 'nobody'"):
        tenant_restore.tenant_resolve("nobody")
    assert tenant_restore.export_resolve(str(export.pk)) == tenant_restore.export_resolve(export.location) == export
    with pytest.raises(ApplicationError, match="no tenant export s3://elsewhere"):
        tenant_restore.export_resolve("s3://elsewhere/x.tar.gz")
