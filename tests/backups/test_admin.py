"""Operators: lists of backups and exports, and "run now" buttons that go through the backups queue."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from backups.leases import lease_fields, lease_seconds
from backups.models import BackupRun, TenantExport
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_lists_render_with_filters(admin_client_logged_in):
    BackupRun.objects.create(engine="pgbackrest", kind="full", status="succeeded", label="L1F", size_bytes=2 << 20)
    TenantExport.objects.create(status="failed", error="S3 down")
    page = admin_client_logged_in.get(reverse("admin:backups_backuprun_changelist") + "?status__exact=succeeded")
    assert page.status_code == 200
    body = page.content.decode()
    assert "L1F" in body and "2.0 MiB" in body and "Run full backup now" in body and "Verify latest" in body
    page = admin_client_logged_in.get(reverse("admin:backups_tenantexport_changelist") + "?status__exact=failed")
    assert page.status_code == 200 and "Failed" in page.content.decode()


def test_a_run_shows_the_process_holding_its_lease_and_its_last_heartbeat(admin_client_logged_in):
    run = BackupRun.objects.create(engine="pgbackrest", kind="full", **lease_fields())
    # A heartbeat a day ago, so its time is on no other field of the page.
    heartbeat = run.started_at - timedelta(days=1, hours=1, minutes=7)
    BackupRun.objects.filter(pk=run.pk).update(lease_expires_at=heartbeat + timedelta(seconds=lease_seconds()))
    page = admin_client_logged_in.get(reverse("admin:backups_backuprun_change", args=[run.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    shown = date_format(timezone.localtime(heartbeat), "DATETIME_FORMAT")
    assert run.lease_owner in body and "Last heartbeat" in body and shown in body, shown


def test_run_full_backup_now_goes_through_a_worker(admin_client_logged_in, celery_worker):
    url = reverse("admin:backups_backuprun_run_full")
    confirm = admin_client_logged_in.post(url)
    assert confirm.status_code == 200 and "Yes, run a full backup now" in confirm.content.decode()
    response = admin_client_logged_in.post(url, {"apply": "1", "reason": "before a migration"}, follow=True)
    assert "Full backup queued" in response.content.decode()
    from console.models import AuditLogEntry

    entry = AuditLogEntry.objects.get(action="backup.run")
    assert entry.actor_username == "root-op" and entry.reason == "before a migration"
    run = wait_for(lambda: BackupRun.objects.filter(status="succeeded", trigger="admin").first(), timeout=120)
    assert run.kind == "full" and run.label.endswith("F")


def test_export_all_tenants_now_goes_through_a_worker(admin_client_logged_in, celery_worker, tenant):
    page = admin_client_logged_in.get(reverse("admin:backups_tenantexport_changelist"))
    assert "Export all tenants now" in page.content.decode()
    response = admin_client_logged_in.post(
        reverse("admin:backups_tenantexport_export_now"), {"apply": "1", "reason": "before a migration"}, follow=True
    )
    assert "Export of every tenant queued" in response.content.decode()
    export = wait_for(lambda: TenantExport.objects.filter(status="succeeded", trigger="admin").first(), timeout=60)
    assert export.tenant_count == 1 and export.location.startswith("s3://")


def test_verify_latest_from_the_admin_is_recorded_as_the_admin_s(admin_client_logged_in, celery_worker):
    from backups import services
    from backups.models import RestoreVerification

    run = services.backup_run(kind="full")
    url = reverse("admin:backups_backuprun_verify")
    response = admin_client_logged_in.post(url, {"apply": "1", "reason": "monthly check"}, follow=True)
    assert "Verification of the latest backup queued" in response.content.decode()
    drill = wait_for(lambda: RestoreVerification.objects.exclude(status="running").first(), timeout=180)
    assert (drill.status, drill.trigger, drill.backup_run_id, drill.repo) == ("succeeded", "admin", run.pk, run.repo)


def test_the_restore_dry_run_page_lists_conflicts_and_offers_no_restore(admin_client_logged_in, tenant, website):
    from backups import tenant_exports
    from tenants import services as tenant_services
    from tenants.models import Hostname

    Hostname.objects.filter(website=website).update(status="verified", verified_at=timezone.now())
    export = tenant_exports.tenant_export_create()
    Hostname.objects.filter(website=website).delete()
    other = tenant_services.tenant_create(name="Other", slug="other")
    taken = tenant_services.website_create(tenant=other, name="Took it", hostnames=["www.a.test"])
    Hostname.objects.filter(website=taken).update(status="verified", verified_at=timezone.now())
    page = admin_client_logged_in.post(
        reverse("admin:backups_tenantexport_changelist"),
        {"action": "restore_tenant", "_selected_action": [str(export.pk)], "tenant": "tenant-a",
         "reason": "ticket 3", "dry_run": "1"},
    )  # fmt: skip
    body = page.content.decode()
    assert page.status_code == 200 and 'id="restore-conflicts"' in body and "www.a.test" in body
    assert 'name="apply"' not in body and 'name="dry_run_token"' not in body
