import re

import pytest

from apikeys.models import ApiKey, ApiUsageMinute

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, django_user_model, plain_static):
    user = django_user_model.objects.create_superuser(username="root", password="root-pass-123", email="r@x.test")
    client.force_login(user)
    return client


def test_add_shows_key_once(admin_client, tenant):
    response = admin_client.post(
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
    change_page = admin_client.get(f"/admin/apikeys/apikey/{api_key.pk}/change/").content.decode()
    assert match[0] not in change_page and api_key.display in change_page
    assert match[0] not in admin_client.get("/admin/apikeys/apikey/").content.decode()


def test_bulk_revoke_asks_for_a_reason_then_revokes(
    admin_client, tenant, make_key, key_client, django_capture_on_commit_callbacks
):
    first, raw_first = make_key(tenant, ["websites:read"], name="one")
    second, _ = make_key(tenant, ["websites:read"], name="two")
    keep, _ = make_key(tenant, ["websites:read"], name="keep")
    data = {"action": "revoke_selected", "_selected_action": [str(first.pk), str(second.pk)]}
    confirm = admin_client.post("/admin/apikeys/apikey/", data)
    assert confirm.status_code == 200 and b"reason" in confirm.content
    assert ApiKey.objects.filter(revoked_at__isnull=False).count() == 0
    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client.post(
            "/admin/apikeys/apikey/", {**data, "apply": "1", "reason": "laptop stolen"}, follow=True
        )
    assert b"2 key(s) revoked" in done.content
    assert set(ApiKey.objects.filter(revoked_reason="laptop stolen").values_list("pk", flat=True)) == {
        first.pk,
        second.pk,
    }
    keep.refresh_from_db()
    assert keep.revoked_at is None and ApiKey.objects.get(pk=first.pk).revoked_by == "user:root"
    assert key_client(raw_first).get("/api/v1/websites/").status_code == 401
    filtered = admin_client.get("/admin/apikeys/apikey/?state=revoked").content.decode()
    assert "one" in filtered and ">keep<" not in filtered


def test_usage_chart_per_tenant(admin_client, tenant, make_key):
    from django.utils import timezone

    api_key, _ = make_key(tenant, ["websites:read"])
    ApiUsageMinute.objects.create(tenant=tenant, api_key=api_key, minute=timezone.now().replace(second=0), requests=42)
    page = admin_client.get(f"/admin/apikeys/apiusageminute/chart/?tenant={tenant.pk}").content.decode()
    assert "Tenant A — 42 requests" in page and page.count('class="bar"') == 24
    assert admin_client.get("/admin/apikeys/apiusageminute/").status_code == 200
