"""Per-tenant export from one snapshot and restore of exactly one tenant, on the real stack (S3 on moto)."""

import io
import json
import tarfile

import boto3
import pytest
from django.conf import settings

from backups import services
from backups.engines.base import BackupError
from backups.models import TenantExport
from backups.tenant_data import schema_version, tenant_owned_models
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
    manifest, bodies = services._read_tenant_from_export(export.location, str(a.pk))
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

    plan = services.tenant_export_restore(location=export.location, tenant_id=a.pk, dry_run=True)
    assert plan["tenants.website"] == {"current": 2, "in_export": 1}
    assert plan["tenants.hostname"] == {"current": 2, "in_export": 2}
    assert Website.objects.filter(tenant=a).count() == 2  # dry run changed nothing

    services.tenant_export_restore(location=export.location, tenant_id=a.pk)
    assert _tenant_rows(a.pk) == original_a
    assert Tenant.objects.get(pk=a.pk).name == "Alpha"
    assert _tenant_rows(b.pk) == rows_b_before  # the other tenant is untouched
    assert Tenant.objects.get(pk=b.pk).name == "Beta renamed"
    assert Hostname.objects.filter(hostname="beta.test").exists()


def _rewrite_archive(location: str, mutate) -> str:
    bucket, key = location[5:].split("/", 1)
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
    new_key = key.replace(".tar.gz", "-tampered.tar.gz")
    _s3().put_object(Bucket=bucket, Key=new_key, Body=out.getvalue())
    return f"s3://{bucket}/{new_key}"


def test_corrupted_export_is_refused_by_its_checksum(two_tenants):
    a, _ = two_tenants
    export = services.tenant_export_create()
    name = f"tenants/{a.pk}.copy"

    def corrupt(members):
        members[name] = members[name].replace(b"Alpha", b"Evil!")

    tampered = _rewrite_archive(export.location, corrupt)
    tenant_services.tenant_update(tenant=a, name="Alpha now")
    with pytest.raises(BackupError, match="checksum mismatch"):
        services.tenant_export_restore(location=tampered, tenant_id=a.pk)
    assert Tenant.objects.get(pk=a.pk).name == "Alpha now"


def test_other_schema_version_is_refused(two_tenants):
    a, _ = two_tenants
    export = services.tenant_export_create()

    def other_version(members):
        manifest = json.loads(members["manifest.json"])
        manifest["schema_version"] = "0000000000000000"
        members["manifest.json"] = json.dumps(manifest).encode()

    tampered = _rewrite_archive(export.location, other_version)
    with pytest.raises(BackupError, match="schema version 0000000000000000 does not match"):
        services.tenant_export_restore(location=tampered, tenant_id=a.pk, dry_run=True)


def test_unknown_tenant_and_unreachable_storage_are_clear_errors(two_tenants, settings):
    export = services.tenant_export_create()
    with pytest.raises(BackupError, match="is not in this export"):
        services.tenant_export_restore(location=export.location, tenant_id="00000000-0000-0000-0000-000000000000")
    settings.S3_ENDPOINT_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    with pytest.raises(BackupError, match="tenant export failed: uploading the tenant export to S3 failed"):
        services.tenant_export_create()
    failed = TenantExport.objects.filter(status=TenantExport.Status.FAILED).get()
    assert "S3" in failed.error and failed.finished_at


def test_embedded_mode_writes_exports_to_the_local_folder(two_tenants, settings, tmp_path):
    a, _ = two_tenants
    settings.S3_BUCKET = ""
    settings.BACKUP_TENANT_EXPORT_DIR = tmp_path / "exports"
    export = services.tenant_export_create()
    assert export.location.startswith(str(tmp_path / "exports"))
    plan = services.tenant_export_restore(location=export.location, tenant_id=a.pk, dry_run=True)
    assert plan["tenants.hostname"] == {"current": 2, "in_export": 2}
