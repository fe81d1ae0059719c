"""Operator workflows end to end in Chromium, on the real stack: each one clicked through the console as an
operator would, its effect checked on the records (and the API, the receiver, the worker), and its pages
looked at twice, at 1280×800 and 1920×1080: a screenshot each under test-artifacts/console/workflows/, no
horizontal overflow, and axe-core with no critical violation."""

import json
import urllib.error
import urllib.request

import pytest

from apikeys import services as apikey_services
from apikeys.models import ApiKey
from backups import tenant_exports
from backups.models import BackupRun
from cdn.models import Invalidation
from console.models import AuditLogEntry
from console.roles import PLATFORM_ADMINS
from tenants import services as tenant_services
from tenants.bundles import bundle_build
from tenants.models import Deployment, Tenant, Website
from tests.helpers import operator_create, wait_for
from webhooks import services as webhook_services
from webhooks.models import Attempt, Delivery

from .conftest import REPO_ROOT, every_admin_page, login

pytestmark = pytest.mark.django_db(transaction=True)

SHOTS = REPO_ROOT / "test-artifacts" / "console" / "workflows"
VIEWPORTS = [(1280, 800), (1920, 1080)]


@pytest.fixture
def operator(django_user_model):
    return operator_create("olga-ops", "olga-ops-pw-5521", PLATFORM_ADMINS)


@pytest.fixture
def console(browser, console_server, operator):
    """A logged-in platform admin's page at 1280×800."""
    context = browser.new_context(base_url=console_server, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(20_000)
    page = context.new_page()
    login(page, "olga-ops", "olga-ops-pw-5521")
    yield page
    context.close()


def look(page, name: str) -> None:
    """The page as it is now, at both sizes: screenshot, no horizontal overflow, no critical axe-core
    violation; then back to 1280×800."""
    from axe_playwright_python.sync_playwright import Axe

    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in VIEWPORTS:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(150)  # unfold sizes its change-list bar on resize
        scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll_width <= inner_width, f"{name} overflows at {width}px: {scroll_width} > {inner_width}"
        path = SHOTS / f"{name}-{width}x{height}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000, path
    results = Axe().run(page)
    critical = [
        (violation["id"], [node["target"] for node in violation["nodes"]][:3])
        for violation in results.response["violations"]
        if violation["impact"] == "critical"
    ]
    assert critical == [], f"{name}: {critical}"
    page.set_viewport_size({"width": 1280, "height": 800})


def _messages(page) -> str:
    page.wait_for_selector("ul.messagelist li")
    return page.inner_text("ul.messagelist")


def _api_get(base_url: str, raw_key: str) -> int:
    request = urllib.request.Request(base_url + "/api/v1/websites/", headers={"Authorization": f"Bearer {raw_key}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our live server on 127.0.0.1
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _status_first(page, row_text: str) -> str:
    """The row's status badge, checked to be the list's first column (after the selection box)."""
    headers = page.locator("#result_list thead th:not(.action-checkbox-column)")
    first_header = headers.first.inner_text().strip().splitlines()[0].lower()  # then the sort icons' names
    assert first_header in ("status", "state"), first_header
    row = page.locator("#result_list tbody tr", has_text=row_text)
    return row.locator("td[class*='field-'][class*='_badge']").first.inner_text().strip()


def _confirm(page, reason: str) -> None:
    page.fill("#id_reason", reason)
    page.click("input[name=apply]")


@pytest.fixture
def acme():
    tenant = tenant_services.tenant_create(name="Acme", slug="acme", tier="starter")
    website = tenant_services.website_create(tenant=tenant, name="Acme shop", hostnames=["shop.acme.test"])
    return tenant, website


def test_revoke_a_key_from_its_page(console, console_server, acme):
    tenant, _ = acme
    api_key, raw_key = apikey_services.apikey_create(tenant=tenant, name="leaked-ci-key", scopes=["websites:read"])
    assert _api_get(console_server, raw_key) == 200

    console.goto("/admin/apikeys/apikey/")
    assert _status_first(console, "leaked-ci-key") == "ACTIVE"
    look(console, "01-keys")
    console.locator("#result_list tbody tr a", has_text="leaked-ci-key").click()
    console.click("text=Revoke")
    assert "leaked-ci-key" in console.inner_text(".confirm-objects") and api_key.display in console.content()
    look(console, "01-revoke-confirmation")
    _confirm(console, "leaked in a public CI log")
    assert "1 key(s) revoked." in _messages(console)
    assert f"/admin/apikeys/apikey/{api_key.pk}/change/" in console.url  # back on the key's page
    look(console, "01-revoked")
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at is not None
    assert _api_get(console_server, raw_key) == 401
    assert AuditLogEntry.objects.get(action="apikey.revoke").reason == "leaked in a public CI log"


def test_create_a_key_shows_its_real_prefix_once(console, acme):
    console.goto("/admin/apikeys/apikey/add/")
    console.select_option("#id_tenant", label="Acme")
    console.fill("#id_name", "deploy-bot")
    console.check("input[name=scopes][value='websites:read']")
    look(console, "02-key-form")
    console.click("button[name=_save], input[name=_save]")
    raw = console.inner_text("#new-api-key").strip()
    api_key = ApiKey.objects.get(name="deploy-bot")
    assert raw.startswith(api_key.prefix) and api_key.prefix.startswith("plk_") and not raw.startswith("plk__")
    assert console.inner_text("#new-api-key-display").startswith(api_key.prefix)
    look(console, "02-key-created")
    console.goto("/admin/")
    assert "plk__" not in console.content() and f"deploy-bot ({api_key.display})" in console.content()


def test_suspend_and_reactivate_a_tenant(console, console_server, acme):
    tenant, _ = acme
    _, raw_key = apikey_services.apikey_create(tenant=tenant, name="acme-app", scopes=["websites:read"])

    console.goto("/admin/tenants/tenant/")
    console.locator("#result_list tbody tr", has_text="Acme").locator("input.action-select").check()
    console.select_option("select[name=action]", "suspend_selected")
    console.click("button[name=index]")
    look(console, "03-suspend-confirmation")
    _confirm(console, "unpaid invoices")
    assert "1 tenant(s) suspended." in _messages(console)
    assert Tenant.objects.get(pk=tenant.pk).status == "suspended"
    assert _api_get(console_server, raw_key) == 403
    assert _status_first(console, "Acme") == "SUSPENDED"
    look(console, "03-suspended")

    console.goto(f"/admin/tenants/tenant/{tenant.pk}/change/")
    console.click("text=Reactivate")
    _confirm(console, "paid")
    assert "1 tenant(s) reactivated." in _messages(console)
    assert Tenant.objects.get(pk=tenant.pk).status == "active" and _api_get(console_server, raw_key) == 200
    look(console, "03-reactivated")


def test_change_a_tenant_tier(console, acme):
    tenant, _ = acme
    console.goto(f"/admin/tenants/tenant/{tenant.pk}/change/")
    console.select_option("#id_tier", "professional")
    console.click("button[name=_save], input[name=_save]")
    # A tier change needs a reason: the form says so and nothing changes.
    assert "Say why the tenant's tier or limit changes" in console.inner_text("#content")
    assert Tenant.objects.get(pk=tenant.pk).tier == "starter"
    look(console, "04-tier-needs-reason")
    console.fill("#id_audit_reason", "upgraded by sales, ticket 77")
    console.click("button[name=_save], input[name=_save]")
    assert "was changed successfully" in _messages(console)
    assert Tenant.objects.get(pk=tenant.pk).tier == "professional"
    entry = AuditLogEntry.objects.get(action="tenant.change_tier")
    assert entry.detail["tier"] == {"from": "starter", "to": "professional"}
    row = console.locator("#result_list tbody tr", has_text="Acme")
    assert "Professional" in row.inner_text() and "5000" in row.inner_text()
    look(console, "04-tier-changed")


def test_roll_back_a_deployment(console, acme, celery_worker):
    _, website = acme
    for body in ("first release", "second release"):
        deployment = tenant_services.deployment_create(
            website=website, bundle=bundle_build({"index.html": body}), description=body
        )
        wait_for(lambda d=deployment: Deployment.objects.get(pk=d.pk).status == "succeeded", timeout=60)
    assert Website.objects.get(pk=website.pk).active_deployment.number == 2

    console.goto(f"/admin/tenants/website/{website.pk}/change/")
    console.click("text=Roll back")
    # The confirmation says which deployment is served now and which one will be served.
    objects = console.inner_text(".confirm-objects")
    assert "now serving deployment #2; will serve deployment #1 again" in objects and "first release" in objects
    look(console, "05-rollback-confirmation")
    _confirm(console, "release 2 broke checkout")
    assert "1 website(s) rolled back." in _messages(console)
    active = Website.objects.get(pk=website.pk).active_deployment
    assert active.number == 3 and active.trigger == "rollback" and active.source_deployment.number == 1
    look(console, "05-rolled-back")
    console.goto("/admin/tenants/deployment/")
    assert "Acme shop #3" in console.inner_text("#result_list")
    look(console, "05-deployments")


def test_invalidate_a_cache(console, acme, celery_worker):
    _, website = acme
    console.goto(f"/admin/tenants/website/{website.pk}/change/")
    console.click("text=Invalidate CDN cache")
    console.fill("#id_paths", "/pricing/\n/blog/*")
    look(console, "06-invalidate-confirmation")
    _confirm(console, "price change went live")
    assert "1 invalidation(s) queued." in _messages(console)
    invalidation = Invalidation.objects.get(website=website)
    assert invalidation.paths == ["/pricing/", "/blog/*"]
    wait_for(lambda: Invalidation.objects.get(pk=invalidation.pk).status == "completed", timeout=30)
    console.goto("/admin/cdn/invalidation/")
    assert _status_first(console, "Acme shop") == "COMPLETED"
    look(console, "06-invalidations")


def test_redeliver_a_failed_webhook_from_its_page(
    console, acme, receiver, e2e_webhooks_worker, e2e_webhooks_settings
):  # fmt: skip
    tenant, _ = acme
    receiver.script["/hook"] = [("status", 500), ("ok",)]  # the first attempt fails, the next succeeds
    endpoint, _ = webhook_services.endpoint_create(tenant=tenant, url=receiver.url("/hook"), event_types=["*"])
    webhook_services.endpoint_ping(endpoint=endpoint)
    delivery = wait_for(lambda: Delivery.objects.filter(endpoint=endpoint, status="failed").first(), timeout=30)

    # The dashboard counts it where its link leads.
    console.goto("/admin/console/")
    assert console.inner_text("#webhook-failed-deliveries") == "1 failed"
    console.click("#webhook-failed-deliveries")
    console.wait_for_url("**/admin/webhooks/delivery/?status__exact=failed")
    console.wait_for_selector("#result_list tbody tr")
    assert console.locator("#result_list tbody tr").count() == 1
    look(console, "07-failed-deliveries")
    console.locator("#result_list tbody tr a", has_text=delivery.msg_id).click()
    # History: no field to edit, no Save button, but Redeliver.
    assert console.locator("button[name=_save], input[name=_save]").count() == 0
    look(console, "07-delivery")
    console.click("text=Redeliver")
    _confirm(console, "customer fixed their receiver")
    assert "1 delivery(ies) queued." in _messages(console)
    wait_for(lambda: Attempt.objects.filter(delivery=delivery, number=2, succeeded=True).exists(), timeout=30)
    console.reload()
    attempts = console.inner_text("#attempts-group")
    assert "500" in attempts and "200" in attempts
    assert [json.loads(r.body)["type"] for r in receiver.received("/hook")] == ["ping", "ping"]
    look(console, "07-redelivered")


def test_run_a_backup(console, celery_worker):
    console.goto("/admin/backups/backuprun/")
    console.click("text=Run full backup now")
    assert "Start a full pgBackRest backup of the primary now?" in console.inner_text("#content-main")
    look(console, "08-backup-confirmation")
    _confirm(console, "before the schema migration")
    assert "Full backup queued" in _messages(console)
    run = wait_for(lambda: BackupRun.objects.filter(status="succeeded", trigger="admin").first(), timeout=120)
    console.reload()
    assert _status_first(console, "Full") == "SUCCEEDED"
    look(console, "08-backup-runs")
    console.goto("/admin/console/")
    backups = console.inner_text("#backups")
    assert "Database backup (pgBackRest)" in backups and "never" not in backups.split("\n")[2]
    assert console.inner_text("#backup-engine") == "pgBackRest" and run.engine == "pgbackrest"
    look(console, "08-dashboard")


def test_restore_a_tenant_after_a_dry_run(console, acme):
    tenant, _ = acme
    tenant_services.website_create(tenant=tenant, name="Acme blog", hostnames=["blog.acme.test"])
    export = tenant_exports.tenant_export_create()
    tenant_services.website_delete(website=Website.objects.get(name="Acme blog"))  # the accident

    console.goto(f"/admin/backups/tenantexport/{export.pk}/change/")
    assert console.locator("button[name=_save], input[name=_save]").count() == 0  # an export is history
    console.click("text=Restore a tenant from this export")
    console.fill("#id_tenant", "acme")
    console.fill("#id_reason", "blog deleted by mistake, ticket 42")
    look(console, "09-restore-form")
    console.click("input[name=dry_run]")
    # The dry run names the tenant and what will happen; nothing has changed yet.
    assert "Acme (acme)" in console.inner_text("#restore-tenant")
    assert "Acme (acme)" in console.inner_text("#restore-confirmation")
    assert console.locator("input[name=apply]").get_attribute("value") == "Yes, restore Acme (acme) now"
    assert not Website.objects.filter(name="Acme blog").exists()
    look(console, "09-restore-dry-run")
    console.click("input[name=apply]")
    assert "Tenant Acme (acme) restored from" in _messages(console)
    assert set(Website.objects.filter(tenant=tenant).values_list("name", flat=True)) == {"Acme shop", "Acme blog"}
    look(console, "09-restored")


def test_every_console_page_fits_both_sizes_and_passes_axe(browser, console_server, django_user_model, settings):
    """Every list, add page and object page of the console, the dashboard and its own pages: no horizontal
    overflow at 1280×800 or 1920×1080, no critical axe-core violation, and no Alpine expression that the
    CSP build of Alpine could not evaluate (unfold's components would silently stop working)."""
    from axe_playwright_python.sync_playwright import Axe
    from django.test import RequestFactory
    from django.urls import reverse

    from tests.hardening.conftest import tenant_with_everything

    settings.WEBHOOKS_ALLOW_HTTP = True
    settings.WEBHOOKS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    tenant_with_everything("every-page")
    django_user_model.objects.create_superuser("root-pages", "root@example.com", "root-pages-pw-1")
    request = RequestFactory().get("/admin/")
    request.user = django_user_model.objects.get(username="root-pages")
    urls = ["/admin/", "/admin/console/", "/admin/replicas/", reverse("admin:apikeys_usage_chart")]
    urls += every_admin_page(request)

    context = browser.new_context(base_url=console_server, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(20_000)
    page = context.new_page()
    alpine_errors = []
    page.on("console", lambda m: alpine_errors.append(m.text) if "Alpine" in m.text else None)
    page.on("pageerror", lambda error: alpine_errors.append(str(error)))
    login(page, "root-pages", "root-pages-pw-1")
    axe, problems = Axe(), []
    for url in urls:
        assert page.goto(url).status == 200, url
        for width, height in VIEWPORTS:
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_timeout(100)
            scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            if scroll_width > inner_width:
                problems.append(f"{url} overflows at {width}px: {scroll_width}")
        critical = [v["id"] for v in axe.run(page).response["violations"] if v["impact"] == "critical"]
        if critical:
            problems.append(f"{url}: axe {critical}")
        if alpine_errors:
            problems.append(f"{url}: {alpine_errors[:2]}")
            alpine_errors.clear()
        page.set_viewport_size({"width": 1280, "height": 800})
    context.close()
    assert len(urls) >= 30 and problems == [], problems
