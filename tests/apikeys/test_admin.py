import re

import pytest

from apikeys.models import ApiKey, ApiUsageMinute

pytestmark = pytest.mark.django_db


def test_add_shows_key_once(admin_client_logged_in, tenant):
    response = admin_client_logged_in.post(
        "/admin/apikeys/apikey/add/",
        {"tenant": str(tenant.pk), "name": "from admin", "scopes": ["websites:read", "usage:read"]},
        follow=True,
    )
    assert response.status_code == 200
    page = response.content.decode()
    match = re.search(r"plk_(live|test)_[0-9A-Za-z]{50}", page)
    assert match, page[:2000]
    api_key = ApiKey.objects.get()
    assert api_key.last_four == match[0][-4:] and api_key.scopes == ["usage:read", "websites:read"]
    change_page = admin_client_logged_in.get(f"/admin/apikeys/apikey/{api_key.pk}/change/").content.decode()
    assert match[0] not in change_page and api_key.display in change_page
    assert match[0] not in admin_client_logged_in.get("/admin/apikeys/apikey/").content.decode()


def test_bulk_revoke_asks_for_a_reason_then_revokes(
    admin_client_logged_in, tenant, make_key, key_client, django_capture_on_commit_callbacks
):
    first, raw_first = make_key(tenant, ["websites:read"], name="one")
    second, _ = make_key(tenant, ["websites:read"], name="two")
    keep, _ = make_key(tenant, ["websites:read"], name="keep")
    data = {"action": "revoke_selected", "_selected_action": [str(first.pk), str(second.pk)]}
    confirm = admin_client_logged_in.post("/admin/apikeys/apikey/", data)
    assert confirm.status_code == 200 and b"reason" in confirm.content
    assert ApiKey.objects.filter(revoked_at__isnull=False).count() == 0
    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client_logged_in.post(
            "/admin/apikeys/apikey/", {**data, "apply": "1", "reason": "laptop stolen"}, follow=True
        )
    assert b"2 key(s) revoked" in done.content
    assert set(ApiKey.objects.filter(revoked_reason="laptop stolen").values_list("pk", flat=True)) == {
        first.pk,
        second.pk,
    }
    keep.refresh_from_db()
    assert keep.revoked_at is None and ApiKey.objects.get(pk=first.pk).revoked_by == "user:root-op"
    assert key_client(raw_first).get("/api/v1/websites/").status_code == 401
    filtered = admin_client_logged_in.get("/admin/apikeys/apikey/?state=revoked").content.decode()
    assert "one" in filtered and ">keep<" not in filtered


def test_usage_chart_per_tenant(admin_client_logged_in, tenant, make_key):
    from django.utils import timezone

    api_key, _ = make_key(tenant, ["websites:read"])
    ApiUsageMinute.objects.create(tenant=tenant, api_key=api_key, minute=timezone.now().replace(second=0), requests=42)
    page = admin_client_logged_in.get(f"/admin/apikeys/apiusageminute/chart/?tenant={tenant.pk}").content.decode()
    assert "Tenant A — 42 requests" in page and page.count('class="bar"') == 24
    assert admin_client_logged_in.get("/admin/apikeys/apiusageminute/").status_code == 200


def test_the_new_key_never_travels_in_a_cookie(admin_client_logged_in, tenant):
    """Reproduction: the raw key created in the admin travelled in the (signed, not encrypted) messages cookie."""
    response = admin_client_logged_in.post(
        "/admin/apikeys/apikey/add/", {"tenant": str(tenant.pk), "name": "from admin", "scopes": ["usage:read"]}
    )
    assert response.status_code == 200  # shown in this response, not after a redirect
    raw_key = re.search(r"plk_(live|test)_[0-9A-Za-z]{50}", response.content.decode())[0]
    assert "no-store" in response["Cache-Control"]
    assert all(raw_key not in morsel.value for morsel in response.cookies.values())
    assert "messages" not in response.cookies
    later = admin_client_logged_in.get("/admin/apikeys/apikey/")
    assert raw_key not in later.content.decode() and not list(later.context["messages"])
    assert ApiKey.objects.get().last_four == raw_key[-4:]


def test_admin_limit_change_goes_through_the_service_and_reaches_the_gateway_at_once(
    admin_client_logged_in, tenant, make_key, key_client, django_capture_on_commit_callbacks
):
    """Reproduction: a key's rate_limit_per_minute edited in the admin left the gateway's cached limit for 24 hours."""
    from console.models import AuditLogEntry

    api_key, raw_key = make_key(tenant, ["websites:read"])
    client = key_client(raw_key)
    assert client.get("/api/v1/websites/")["X-RateLimit-Limit"] == "1000"  # the record is cached now
    change = f"/admin/apikeys/apikey/{api_key.pk}/change/"
    above = admin_client_logged_in.post(change, {"name": "ci", "rate_limit_per_minute": "5000"})
    assert above.status_code == 200 and b"At most the tenant" in above.content  # the tenant's is 1000
    with django_capture_on_commit_callbacks(execute=True):
        saved = admin_client_logged_in.post(
            change, {"name": "ci", "rate_limit_per_minute": "2", "audit_reason": "noisy client"}
        )
    assert saved.status_code == 302
    assert [client.get("/api/v1/websites/").status_code for _ in range(3)] == [200, 200, 429]
    entry = AuditLogEntry.objects.get(action="apikey.update")
    assert (entry.reason, entry.detail, entry.actor_username) == (
        "noisy client",
        {"rate_limit_per_minute": 2},
        "root-op",
    )
