"""The operator console in a real browser, on the real stack: what operators see and do."""

import json
import urllib.error
import urllib.request

import pytest

from apikeys import services as apikey_services
from apikeys.models import ApiKey
from apikeys.services import usage_rollup
from cdn.models import Invalidation
from console.models import AuditLogEntry
from console.roles import PLATFORM_ADMINS, SUPPORT
from tenants import services as tenant_services
from tests.helpers import operator_create, wait_for
from webhooks import services as webhook_services
from webhooks.models import Attempt, Delivery

from .conftest import login

pytestmark = pytest.mark.django_db(transaction=True)


def _staff(django_user_model, username: str, group: str):
    operator_create(username, f"{username}-pw-9137", group)
    return username, f"{username}-pw-9137"


def _api_get(base_url: str, raw_key: str, path: str = "/api/v1/websites/") -> int:
    request = urllib.request.Request(base_url + path, headers={"Authorization": f"Bearer {raw_key}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our live server on 127.0.0.1
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _choose_action(page, row_text: str, action: str) -> None:
    """Tick the change-list row that shows row_text, pick the action, press Go."""
    page.locator("#result_list tbody tr", has_text=row_text).locator("input.action-select").check()
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")


@pytest.fixture
def tenant_with_traffic(console_server):
    """A tenant with a website and real API traffic through the gateway, some of it rate-limited."""
    tenant = tenant_services.tenant_create(name="Acme", slug="acme", tier="starter")
    website = tenant_services.website_create(tenant=tenant, name="Acme shop", hostnames=["shop.acme.test"])
    victim, victim_raw = apikey_services.apikey_create(tenant=tenant, name="leaked-ci-key", scopes=["websites:read"])
    throttled, throttled_raw = apikey_services.apikey_create(
        tenant=tenant, name="busy-key", scopes=["websites:read"], rate_limit_per_minute=1
    )
    statuses = [_api_get(console_server, victim_raw) for _ in range(3)]
    statuses += [_api_get(console_server, throttled_raw) for _ in range(4)]
    assert statuses.count(429) >= 2 and statuses[:3] == [200, 200, 200], statuses
    usage_rollup()
    return {"tenant": tenant, "website": website, "victim": victim, "victim_raw": victim_raw, "statuses": statuses}


def test_platform_admin_dashboard_revoke_and_invalidate(
    page, screenshot, console_server, django_user_model, tenant_with_traffic, celery_worker
):
    username, password = _staff(django_user_model, "pat-admin", PLATFORM_ADMINS)
    victim, victim_raw = tenant_with_traffic["victim"], tenant_with_traffic["victim_raw"]
    login(page, username, password)
    screenshot("01-admin-index")

    # The dashboard, with charts drawn by the locally served Chart.js from our own data.
    external = []
    page.on("request", lambda request: None if request.url.startswith(console_server) else external.append(request.url))
    page.click("#console-link a")
    page.wait_for_url("**/admin/console/")
    page.wait_for_function(
        "() => window.Chart && Chart.getChart('api-traffic-chart') && Chart.getChart('webhook-chart')"
    )
    drawn = page.evaluate(
        "() => Chart.getChart('api-traffic-chart').data.datasets.map(d => [d.label, d.data.reduce((a, b) => a + b, 0)])"
    )
    from console.selectors import api_traffic_last_day

    traffic = api_traffic_last_day()
    limited = tenant_with_traffic["statuses"].count(429)
    assert drawn == [["Requests", traffic["total_requests"]], ["Rate-limited", limited]]
    assert traffic["total_requests"] >= len(tenant_with_traffic["statuses"]) - limited
    assert page.inner_text("#traffic-rate-limited") == str(limited)
    tiers = page.evaluate("() => Chart.getChart('tenants-chart').data.datasets.map(d => d.data)")
    assert tiers[0][1] == 1  # Active starter tenants: Acme
    assert page.inner_text("#tenant-total") == "1"
    assert page.locator("#backups tr.backup").count() == 3 and page.locator("#replicas tbody tr").count() >= 1
    assert external == [], external  # nothing fetched from the internet
    screenshot("02-dashboard")

    # Revoke a key, with a reason, after a confirmation; the API refuses it at once.
    page.goto("/admin/apikeys/apikey/")
    _choose_action(page, "leaked-ci-key", "revoke_selected")
    assert page.locator(".confirm-objects").inner_text().startswith("leaked-ci-key")
    screenshot("03-revoke-confirmation")
    assert ApiKey.objects.get(pk=victim.pk).revoked_at is None  # not before confirming
    page.fill("#id_reason", "leaked in a public CI log")
    page.click("input[name=apply]")
    page.wait_for_selector("ul.messagelist li.success")
    assert "1 key(s) revoked." in page.inner_text("ul.messagelist")
    screenshot("04-revoked")
    assert _api_get(console_server, victim_raw) == 401

    # Invalidate typed paths of the site's CDN cache; the invalidation record appears and completes.
    page.goto("/admin/tenants/website/")
    _choose_action(page, "Acme shop", "invalidate_cdn_cache")
    page.fill("#id_paths", "/pricing/\n/blog/*")
    page.fill("#id_reason", "price change went live")
    screenshot("05-invalidate-confirmation")
    page.click("input[name=apply]")
    page.wait_for_selector("ul.messagelist li.success")
    invalidation = Invalidation.objects.get(website=tenant_with_traffic["website"])
    assert invalidation.paths == ["/pricing/", "/blog/*"]
    wait_for(lambda: Invalidation.objects.get(pk=invalidation.pk).status == "completed", timeout=30)
    page.goto("/admin/cdn/invalidation/")
    row = page.locator("#result_list tbody tr", has_text="Acme shop")
    assert row.count() == 1 and "completed" in row.inner_text().lower()  # a badge, in capitals
    screenshot("06-invalidations")

    # Both actions are on the dashboard's audit trail: who, what, why.
    page.goto("/admin/console/")
    audit = page.inner_text("#audit")
    assert "apikey.revoke" in audit and "leaked in a public CI log" in audit and "pat-admin" in audit
    assert "website.invalidate_cdn" in audit and "price change went live" in audit
    assert "Acme shop" in page.inner_text("#invalidations")
    screenshot("07-dashboard-after")
    html = page.content()
    assert victim_raw not in html and ApiKey.objects.get(pk=victim.pk).secret_hash not in html


def test_support_redelivers_a_failed_webhook_but_cannot_revoke(
    page, screenshot, console_server, django_user_model, receiver, e2e_webhooks_worker, e2e_webhooks_settings
):
    username, password = _staff(django_user_model, "sam-support", SUPPORT)
    tenant = tenant_services.tenant_create(name="Globex", slug="globex")
    api_key, raw_key = apikey_services.apikey_create(tenant=tenant, name="globex-deploy", scopes=["websites:read"])
    receiver.script["/hook"] = [("status", 500), ("ok",)]  # the first attempt fails, the next succeeds
    endpoint, secret = webhook_services.endpoint_create(tenant=tenant, url=receiver.url("/hook"), event_types=["*"])
    webhook_services.endpoint_ping(endpoint=endpoint)
    delivery = wait_for(lambda: Delivery.objects.filter(endpoint=endpoint, status="failed").first(), timeout=30)

    login(page, username, password)
    # Revoking is not offered to support...
    page.goto("/admin/apikeys/apikey/")
    assert "globex-deploy" in page.inner_text("#result_list")
    options = page.eval_on_selector_all("select[name=action] option", "options => options.map(o => o.value)")
    assert "revoke_selected" not in options
    screenshot("08-support-keys")
    # ...and refused by the server when posted anyway, with the session's own CSRF token.
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post(
        "/admin/apikeys/apikey/",
        form={
            "csrfmiddlewaretoken": token,
            "action": "revoke_selected",
            "_selected_action": str(api_key.pk),
            "apply": "1",
            "reason": "support should not",
        },  # fmt: skip
        headers={"X-CSRFToken": token, "Referer": console_server + "/admin/apikeys/apikey/"},
    )
    assert response.status == 403
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at is None and _api_get(console_server, raw_key) == 200
    assert not AuditLogEntry.objects.filter(action="apikey.revoke").exists()

    # Support may redeliver: the failed delivery gets a new (manual) attempt, which succeeds.
    page.goto("/admin/webhooks/delivery/?status__exact=failed")
    _choose_action(page, delivery.msg_id, "redeliver_selected")
    page.fill("#id_reason", "customer fixed their receiver")
    screenshot("09-redeliver-confirmation")
    page.click("input[name=apply]")
    page.wait_for_selector("ul.messagelist li.success")
    wait_for(lambda: Attempt.objects.filter(delivery=delivery, number=2).exists(), timeout=30)
    page.goto(f"/admin/webhooks/delivery/{delivery.pk}/change/")
    attempts = page.inner_text("#attempts-group")
    assert "500" in attempts and "200" in attempts
    assert Attempt.objects.get(delivery=delivery, number=2).manual
    assert [json.loads(r.body)["type"] for r in receiver.received("/hook")] == ["ping", "ping"]
    screenshot("10-delivery-attempts")
    html = page.content()
    assert secret not in html and endpoint.secret_encrypted not in html
    entry = AuditLogEntry.objects.get(action="delivery.redeliver")
    assert entry.actor_username == "sam-support" and entry.reason == "customer fixed their receiver"
