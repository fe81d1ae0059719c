"""Admin edits go through the services: checked against the role map, audited, and seen by the gateway."""

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from console.models import AuditLogEntry
from console.roles import PLATFORM_ADMINS, SUPPORT
from tenants.models import Tenant, Website

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_role(django_user_model, client):
    def login(role: str | None, username: str):
        user = django_user_model.objects.create_user(username=username, password=f"{username}-pw-123", is_staff=True)
        if role:
            user.groups.add(Group.objects.get(name=role))
        client.force_login(user)
        return client

    return login


def _tenant_form(tenant, **changes) -> dict:
    return {"name": tenant.name, "tier": tenant.tier, "rate_limit_override": "", **changes}


def test_a_tier_change_in_the_admin_reaches_the_gateway_on_the_next_request(
    tenant, as_role, django_capture_on_commit_callbacks
):
    """Reproduction: editing a tenant's tier in the admin never called tenant_update, so the gateway kept the old
    limit for up to 24 hours."""
    from apikeys import services as apikey_services

    with django_capture_on_commit_callbacks(execute=True):
        _, raw_key = apikey_services.apikey_create(tenant=tenant, name="k", scopes=["websites:read"])
    api = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert api.get("/api/v1/websites/")["X-RateLimit-Limit"] == "1000"  # starter, cached in Redis now
    admin = as_role(PLATFORM_ADMINS, "pat")
    change = f"/admin/tenants/tenant/{tenant.pk}/change/"
    no_reason = admin.post(change, _tenant_form(tenant, tier="free"))
    assert no_reason.status_code == 200 and b"Say why" in no_reason.content
    with django_capture_on_commit_callbacks(execute=True):
        saved = admin.post(change, _tenant_form(tenant, tier="free", audit_reason="downgrade, unpaid"))
    assert saved.status_code == 302
    response = api.get("/api/v1/websites/")
    assert response["X-RateLimit-Limit"] == "100" and response["RateLimit-Policy"].startswith(
        '"minute";q=100;w=60, "month";q=100000;w='
    )
    entry = AuditLogEntry.objects.get(action="tenant.change_tier")
    assert (entry.actor_username, entry.source, entry.reason) == ("pat", "admin", "downgrade, unpaid")
    assert entry.detail == {"tier": {"from": "starter", "to": "free"}}
    with django_capture_on_commit_callbacks(execute=True):
        admin.post(change, _tenant_form(Tenant.objects.get(), rate_limit_override="3", audit_reason="load test"))
    assert [api.get("/api/v1/websites/").status_code for _ in range(3)].count(429) >= 1  # 3 a minute now


def test_support_and_staff_without_a_role_cannot_change_tiers_or_delete(tenant, website, as_role):
    for role, username in ((SUPPORT, "sam"), (None, "nobody")):
        client = as_role(role, username)
        change = f"/admin/tenants/tenant/{tenant.pk}/change/"
        assert client.post(change, _tenant_form(tenant, tier="enterprise", audit_reason="x")).status_code == 403
        assert client.post(f"/admin/tenants/website/{website.pk}/delete/", {"apply": "1", "reason": "x"}).status_code \
            == 403  # fmt: skip
        action = {
            "action": "delete_through_service",
            "_selected_action": [str(website.pk)],
            "apply": "1",
            "reason": "x",
        }
        assert client.post("/admin/tenants/website/", action).status_code in (302, 403)
    assert Tenant.objects.get().tier == "starter" and Website.objects.filter(pk=website.pk).exists()
    assert not AuditLogEntry.objects.exists()


def test_delete_goes_through_the_service_with_a_reason_and_the_stock_action_is_gone(
    website, as_role, django_capture_on_commit_callbacks
):
    from webhooks.models import Event

    admin = as_role(PLATFORM_ADMINS, "pat")
    changelist = admin.get("/admin/tenants/website/").content.decode()
    assert 'value="delete_selected"' not in changelist and 'value="delete_through_service"' in changelist
    stock = admin.post("/admin/tenants/website/", {"action": "delete_selected", "_selected_action": [str(website.pk)],
                                                     "post": "yes"})  # fmt: skip
    assert stock.status_code == 302 and Website.objects.filter(pk=website.pk).exists()  # "No action selected"
    page = admin.get(f"/admin/tenants/website/{website.pk}/delete/")
    assert page.status_code == 200 and b"reason" in page.content and Website.objects.filter(pk=website.pk).exists()
    with django_capture_on_commit_callbacks(execute=True):
        done = admin.post(f"/admin/tenants/website/{website.pk}/delete/",
                          {"_selected_action": [str(website.pk)], "apply": "1", "reason": "tenant asked, ticket 9"})  # fmt: skip
    assert done.status_code == 302 and not Website.objects.filter(pk=website.pk).exists()
    entry = AuditLogEntry.objects.get(action="website.delete")
    assert entry.reason == "tenant asked, ticket 9" and entry.target_id == str(website.pk)
    assert Event.objects.filter(type="website.deleted").exists()  # the service's webhook event


def test_tenant_delete_refuses_its_keys_at_once(tenant, as_role, django_capture_on_commit_callbacks):
    from apikeys import services as apikey_services

    with django_capture_on_commit_callbacks(execute=True):
        _, raw_key = apikey_services.apikey_create(tenant=tenant, name="k", scopes=["websites:read"])
    api = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert api.get("/api/v1/websites/").status_code == 200  # cached in Redis
    admin = as_role(PLATFORM_ADMINS, "pat")
    with django_capture_on_commit_callbacks(execute=True):
        admin.post("/admin/tenants/tenant/", {"action": "delete_through_service", "_selected_action": [str(tenant.pk)],
                                              "apply": "1", "reason": "closed account"})  # fmt: skip
    assert not Tenant.objects.exists()
    response = api.get("/api/v1/websites/")
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
    assert AuditLogEntry.objects.get(action="tenant.delete").reason == "closed account"


def test_hostnames_are_changed_through_the_website_service(website, as_role, django_capture_on_commit_callbacks):
    from tenants.models import Hostname
    from webhooks.models import Event

    admin = as_role(PLATFORM_ADMINS, "pat")
    existing = Hostname.objects.get(website=website)
    data = {
        "name": website.name, "status": "active", "cdn_backend": "default", "cdn_config": "{}",
        "cache_overrides": "{}", "audit_reason": "customer moved domains",
        "hostnames-TOTAL_FORMS": "2", "hostnames-INITIAL_FORMS": "1",
        "hostnames-0-id": str(existing.pk), "hostnames-0-website": str(website.pk),
        "hostnames-0-hostname": existing.hostname, "hostnames-0-DELETE": "on",
        "hostnames-1-website": str(website.pk), "hostnames-1-hostname": "  WWW.New-Name.TEST ",
        "deployments-TOTAL_FORMS": "0", "deployments-INITIAL_FORMS": "0",
    }  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(f"/admin/tenants/website/{website.pk}/change/", data)
    assert response.status_code == 302, response.content[:2000]
    assert list(Hostname.objects.filter(website=website).values_list("hostname", flat=True)) == ["www.new-name.test"]
    entry = AuditLogEntry.objects.get(action="website.update")
    assert entry.detail == {"hostnames": ["www.new-name.test"]} and entry.reason == "customer moved domains"
    assert Event.objects.filter(type="website.updated").exists()
