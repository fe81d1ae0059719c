"""The dashboard's numbers come from the apps' records; no secret reaches any console page."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apikeys.models import ApiKey, ApiUsageMinute
from console import selectors
from tenants import services as tenant_services

pytestmark = pytest.mark.django_db


def test_api_traffic_sums_per_hour_over_the_last_day(tenant, make_key):
    api_key, _ = make_key(tenant)
    now = timezone.now()
    rows = [
        (now, 10, 2),
        (now - timedelta(minutes=1), 5, 0),
        (now - timedelta(hours=3), 7, 7),
        (now - timedelta(hours=30), 99, 99),
    ]
    for minute, requests, limited in rows:
        ApiUsageMinute.objects.create(tenant=tenant, api_key=api_key, minute=minute.replace(second=0, microsecond=0),
                                      requests=requests, rate_limited=limited)  # fmt: skip
    traffic = selectors.api_traffic_last_day()
    assert len(traffic["labels"]) == 24 and traffic["total_requests"] == 22 and traffic["total_rate_limited"] == 9
    assert traffic["requests"][-4] == 7 and traffic["rate_limited"][-4] == 7
    assert traffic["rate_limited_share"] == round(9 / 22, 4)


def test_tenants_by_tier_and_status(db):
    tenant_services.tenant_create(name="A", slug="a", tier="free")
    suspended = tenant_services.tenant_create(name="B", slug="b", tier="free")
    tenant_services.tenant_suspend(tenant=suspended, reason="x")
    tenant_services.tenant_create(name="C", slug="c", tier="enterprise")
    table = selectors.tenants_by_tier_and_status()
    rows = {row["tier"]: row["counts"] for row in table["rows"]}
    assert table["statuses"] == ["Active", "Suspended"]
    assert rows["Free"] == [1, 1] and rows["Enterprise"] == [1, 0] and rows["Starter"] == [0, 0]
    assert table["totals"] == [2, 1] and table["total"] == 3


def test_dashboard_renders_for_support_and_shows_no_secret(support_user, client_for, tenant, make_key):
    api_key, raw_key = make_key(tenant)
    client = client_for(support_user)
    pages = ["/admin/console/", "/admin/", "/admin/apikeys/apikey/", f"/admin/apikeys/apikey/{api_key.pk}/change/",
             "/admin/console/auditlogentry/"]  # fmt: skip
    stored_hash = ApiKey.objects.get().secret_hash
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert raw_key not in html and stored_hash not in html and raw_key[-30:] not in html, url
    dashboard = client.get("/admin/console/").content.decode()
    assert "console/vendor/chartjs-4.5.1/chart.umd.min" in dashboard and 'id="api-traffic-chart"' in dashboard
    assert "https://" not in dashboard.split('id="content-main"')[1]  # charts and scripts are served locally


def test_dashboard_requires_staff(client, django_user_model):
    assert client.get("/admin/console/").status_code == 302
    client.force_login(django_user_model.objects.create_user(username="customer", password="x-pass-long-1"))
    assert client.get("/admin/console/").status_code == 302


def test_backup_freshness_states(settings):
    from backups.models import BackupRun, TenantExport

    assert [row["state"] for row in selectors.latest_backups()] == ["red", "red", "red"]  # nothing yet
    now = timezone.now()
    run = BackupRun.objects.create(engine="pgbackrest", kind="incr", status="succeeded", label="L1I")
    BackupRun.objects.filter(pk=run.pk).update(finished_at=now - timedelta(hours=1))
    TenantExport.objects.create(status="succeeded", finished_at=now - timedelta(hours=30))
    states = [row["state"] for row in selectors.latest_backups()]
    assert states == ["green", "amber", "red"]
    BackupRun.objects.create(engine="pgbackrest", kind="incr", status="failed", label="L2I", finished_at=now)
    assert selectors.latest_backups()[0]["state"] == "amber"  # a failure after the last success
    BackupRun.objects.filter(pk=run.pk).update(
        finished_at=now - timedelta(hours=settings.CONSOLE_BACKUP_RED_AFTER_HOURS + 1)
    )
    assert selectors.latest_backups()[0]["state"] == "red"


def _delivery(tenant, *, status: str, failed_attempts: int):
    from webhooks.models import Attempt, Delivery, Endpoint, Event

    endpoint = Endpoint.objects.first() or Endpoint.objects.create(
        tenant=tenant, url="https://hooks.example.test/in", event_types=["*"]
    )
    event = Event.objects.create(tenant=tenant, type="website.created", data={})
    delivery = Delivery.objects.create(event=event, endpoint=endpoint, status=status, attempt_count=failed_attempts)
    for number in range(1, failed_attempts + 1):
        Attempt.objects.create(delivery=delivery, number=number, started_at=timezone.now(), duration_ms=5,
                               status_code=500, succeeded=False)  # fmt: skip
    return delivery


def test_webhook_figures_agree_with_the_delivery_lists_they_link_to(platform_admin, client_for, tenant):
    """Failed attempts that are being retried are not "0 failed deliveries" beside an 85 % failure rate:
    the dashboard tells attempts apart from deliveries by state, and each count is its list's count."""
    for _ in range(3):
        _delivery(tenant, status="pending", failed_attempts=2)  # retrying
    _delivery(tenant, status="failed", failed_attempts=3)  # gave up: to redeliver
    _delivery(tenant, status="pending", failed_attempts=0)  # not tried yet
    client = client_for(platform_admin)
    page = client.get("/admin/console/").content.decode()
    webhooks = selectors.webhook_attempts_last_day()
    assert webhooks["total_attempts"] == webhooks["total_failed"] == 9 and webhooks["failure_rate"] == 1.0
    assert (webhooks["failed_deliveries"], webhooks["pending_deliveries"], webhooks["retrying_deliveries"]) == (1, 4, 3)
    assert 'id="webhook-failed-deliveries">1 failed</a>' in page and 'id="webhook-pending">4 pending</a>' in page
    assert "(3 retrying after a failed attempt)" in page
    for status, count in (("failed", 1), ("pending", 4)):
        listed = client.get(f"/admin/webhooks/delivery/?status__exact={status}")
        assert listed.status_code == 200 and listed.context["cl"].result_count == count


def test_backups_panel_names_the_configured_engine(platform_admin, client_for, settings):
    from backups.engines import reset_engines
    from backups.models import BackupRun

    BackupRun.objects.create(engine="pgbackrest", kind="full", status="succeeded", label="OLD-F",
                             finished_at=timezone.now())  # fmt: skip
    settings.BACKUP_ENGINE = "sqlite"
    reset_engines()
    try:
        page = client_for(platform_admin).get("/admin/console/").content.decode()
    finally:
        reset_engines()
    assert "Database backup (SQLite online backup)" in page and "pgBackRest" not in page
    # With no incremental backups, "Run a backup now" runs a full one.
    assert 'action="/admin/backups/backuprun/run-full/"' in page and "run-incr" not in page


def test_api_traffic_says_up_to_when_it_is_counted(platform_admin, client_for, tenant, make_key):
    client = client_for(platform_admin)
    assert "No usage rolled up yet" in client.get("/admin/console/").content.decode()
    api_key, _ = make_key(tenant)
    minute = timezone.now().replace(second=0, microsecond=0)
    ApiUsageMinute.objects.create(tenant=tenant, api_key=api_key, minute=minute, requests=300)
    page = client.get("/admin/console/").content.decode()
    assert 'id="traffic-total">300<' in page
    assert f"Counted up to {minute + timedelta(minutes=1):%H:%M} UTC" in page
