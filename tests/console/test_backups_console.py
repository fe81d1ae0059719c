"""Backups in the console: run/verify need their roles; a tenant restore needs a dry run first."""

import pytest
from django.urls import reverse

from backups import tenant_exports as backup_services
from backups.models import TenantExport
from console.models import AuditLogEntry
from tenants import services as tenant_services
from tenants.models import Website

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stack]

EXPORTS = "/admin/backups/tenantexport/"


@pytest.fixture
def export_with_site(tenant):
    tenant_services.website_create(tenant=tenant, name="Kept", hostnames=["kept.a.test"])
    return backup_services.tenant_export_create()


def test_restore_tenant_dry_run_first_then_confirm(platform_admin, support_user, client_for, tenant, export_with_site):
    Website.objects.filter(tenant=tenant).delete()  # the accident the restore repairs
    action = {"action": "restore_tenant", "_selected_action": [str(export_with_site.pk)]}
    step = {**action, "tenant": tenant.slug, "reason": "deleted by mistake, ticket 42"}

    support = client_for(support_user)
    assert b'value="restore_tenant"' not in support.get(EXPORTS).content
    assert support.post(EXPORTS, {**step, "dry_run": "1"}).status_code == 403

    client = client_for(platform_admin)
    assert b"Dry run" in client.post(EXPORTS, action).content
    skipped = client.post(EXPORTS, {**step, "apply": "1"})  # straight to the restore: refused
    assert skipped.status_code == 200 and b"Run the dry run for this tenant first" in skipped.content
    forged = client.post(EXPORTS, {**step, "apply": "1", "dry_run_token": "forged:token"})
    assert b"Run the dry run for this tenant first" in forged.content
    assert not Website.objects.filter(tenant=tenant).exists()

    dry_run = client.post(EXPORTS, {**step, "dry_run": "1"})
    page = dry_run.content.decode()
    assert 'id="restore-plan"' in page and "tenants.website" in page
    assert not Website.objects.filter(tenant=tenant).exists()  # a dry run changes nothing
    token = page.split('name="dry_run_token" value="')[1].split('"')[0]

    done = client.post(EXPORTS, {**step, "apply": "1", "dry_run_token": token}, follow=True)
    assert b"restored from" in done.content
    assert set(Website.objects.filter(tenant=tenant).values_list("name", flat=True)) == {"Kept"}
    outcomes = list(
        AuditLogEntry.objects.filter(action="tenant.restore").order_by("id").values_list("outcome", "actor_username")
    )
    assert outcomes == [("dry_run", "pat-admin"), ("done", "pat-admin")]
    assert AuditLogEntry.objects.filter(action="tenant.restore").last().target_id == str(tenant.pk)


def test_run_and_verify_backup_roles(platform_admin, support_user, client_for):
    support = client_for(support_user)
    run_full = reverse("admin:backups_backuprun_run_full")
    verify = reverse("admin:backups_backuprun_verify")
    assert support.post(run_full, {"apply": "1", "reason": "x"}).status_code == 403
    assert support.post(verify).status_code == 403  # support views and redelivers, nothing more
    assert client_for(platform_admin).post(run_full).status_code == 200
    assert client_for(platform_admin).post(verify).status_code == 200  # the confirmation page
    assert not AuditLogEntry.objects.exists()
    assert TenantExport.objects.count() == 0


def test_the_sqlite_engine_offers_no_incremental_backup(platform_admin, client_for, settings):
    """Embedded mode's engine makes full copies only: the console says so instead of a button that fails."""
    from backups.engines import reset_engines
    from backups.engines.sqlite import INCREMENTAL_MESSAGE

    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    admin = client_for(platform_admin)
    changelist = reverse("admin:backups_backuprun_changelist")
    assert "Run incremental now" in admin.get(changelist).content.decode()  # pgBackRest on the stack

    settings.BACKUP_ENGINE = "sqlite"
    reset_engines()
    try:
        page = admin.get(changelist).content.decode()
        assert "Run incremental now" not in page and "Run full backup now" in page
        assert INCREMENTAL_MESSAGE in page
        response = admin.post(reverse("admin:backups_backuprun_run_incr"), follow=True)
        assert INCREMENTAL_MESSAGE in response.content.decode()
        assert not AuditLogEntry.objects.exists()
    finally:
        reset_engines()
