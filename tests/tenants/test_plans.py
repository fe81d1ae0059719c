"""Usage plans as operators change them: a tier's plan in the admin, a tenant's overrides through the admin
and the API, each audited, each reaching the gateway on the next request (republished, never read per
request)."""

import http_sf
import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from console.models import AuditLogEntry
from console.roles import PLATFORM_ADMINS, SUPPORT
from core.exceptions import ApplicationError
from tenants import plans
from tenants.models import DEFAULT_USAGE_PLANS, UsagePlan

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_role(django_user_model):
    def login(role: str | None, username: str):
        user = django_user_model.objects.create_user(username=username, password=f"{username}-pw-123", is_staff=True)
        if role:
            user.groups.add(Group.objects.get(name=role))
        client = APIClient()
        client.force_login(user)
        return client

    return login


@pytest.fixture
def key_api(tenant, django_capture_on_commit_callbacks):
    from apikeys import services

    with django_capture_on_commit_callbacks(execute=True):
        _, raw_key = services.apikey_create(tenant=tenant, name="k", scopes=["websites:read"])
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {raw_key}")


def _policies(response) -> dict:
    return {name: params["q"] for name, params in http_sf.parse(response["RateLimit-Policy"].encode(), tltype="list")}


def test_every_tier_has_its_documented_plan():
    """Seeded by the migration, and again after a flush empties the table (post_migrate)."""
    seeded = {plan.tier: plans.tier_usage_plan(plan.tier)._asdict() for plan in UsagePlan.objects.all()}
    assert seeded == {str(tier): values for tier, values in DEFAULT_USAGE_PLANS.items()}
    assert seeded["free"]["requests_per_minute"] == 100 and seeded["enterprise"]["requests_per_minute"] == 50_000


def test_an_operator_edits_a_plan_in_the_admin_audited_and_every_tenant_of_the_tier_gets_it(
    tenant, key_api, as_role, django_capture_on_commit_callbacks
):
    assert _policies(key_api.get("/api/v1/websites/")) == {"minute": 1_000, "month": 5_000_000}  # starter
    plan = UsagePlan.objects.get(tier="starter")
    change = f"/admin/tenants/usageplan/{plan.pk}/change/"
    form = {"burst_per_second": "7", "requests_per_minute": "1000", "monthly_quota": ""}
    support = as_role(SUPPORT, "sam")
    assert support.get(change).status_code == 200  # support looks
    assert support.post(change, {**form, "audit_reason": "no"}).status_code == 403
    admin = as_role(PLATFORM_ADMINS, "pat")
    no_reason = admin.post(change, form)
    assert no_reason.status_code == 200 and b"Say why" in no_reason.content
    with django_capture_on_commit_callbacks(execute=True):
        saved = admin.post(change, {**form, "audit_reason": "bursty clients"})
    assert saved.status_code == 302
    assert _policies(key_api.get("/api/v1/websites/")) == {"burst": 7, "minute": 1_000}  # no quota any more
    entry = AuditLogEntry.objects.get(action="usage_plan.update")
    assert (entry.actor_username, entry.source, entry.reason) == ("pat", "admin", "bursty clients")
    assert entry.detail["burst_per_second"] == {"from": None, "to": 7}
    with pytest.raises(ApplicationError) as refused:
        plans.usage_plan_update(tier="starter", burst_per_second=0, requests_per_minute=10, monthly_quota=None)
    assert "burst_per_second" in refused.value.fields


def test_a_tenant_override_is_an_audited_operator_action_on_the_api(
    tenant, key_api, as_role, django_capture_on_commit_callbacks
):
    url = f"/api/v1/tenants/{tenant.pk}/"
    support = as_role(SUPPORT, "sam")
    assert support.patch(url, {"monthly_quota_override": 5}, format="json").status_code == 403
    admin = as_role(PLATFORM_ADMINS, "pat")
    bad = admin.patch(url, {"burst_override": 0}, format="json")
    assert bad.status_code == 400 and "burst_override" in bad.json()["error"]["fields"]
    with django_capture_on_commit_callbacks(execute=True):
        saved = admin.patch(url, {"monthly_quota_override": 5, "burst_override": 50}, format="json")
    assert saved.status_code == 200 and saved.json()["monthly_quota_override"] == 5
    assert _policies(key_api.get("/api/v1/websites/")) == {"burst": 50, "minute": 1_000, "month": 5}
    entry = AuditLogEntry.objects.get(action="tenant.change_tier")
    assert entry.actor_username == "pat" and entry.detail["monthly_quota_override"] == 5


def test_the_tenant_page_shows_the_quota_and_its_alerts(tenant, as_role):
    from django.utils import timezone

    from apikeys.gateway.base import current_month
    from apikeys.models import TenantUsageMonth

    TenantUsageMonth.objects.create(
        tenant=tenant, month=current_month().first_day, units=4_100_000, warning_sent_at=timezone.now()
    )
    page = as_role(SUPPORT, "sam").get(f"/admin/tenants/tenant/{tenant.pk}/change/")
    assert page.status_code == 200
    assert b"4,100,000 of 5,000,000 units" in page.content and b"900,000 left" in page.content
    assert b"warning sent" in page.content and b"exceeded sent" not in page.content
