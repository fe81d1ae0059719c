"""Operator workflows: confirmation step, server-side roles, one audit entry per target."""

import pytest
from rest_framework.test import APIClient

from apikeys.models import ApiKey
from cdn.models import Invalidation
from console.models import AuditLogEntry
from console.roles import PLATFORM_ADMINS, SUPPORT
from tenants.models import Tenant

pytestmark = pytest.mark.django_db

KEYS = "/admin/apikeys/apikey/"


def _api_status(raw_key: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client.get("/api/v1/websites/").status_code


def test_roles_are_groups_with_the_documented_permissions():
    from django.contrib.auth.models import Group

    support = set(Group.objects.get(name=SUPPORT).permissions.values_list("content_type__app_label", "codename"))
    admins = set(Group.objects.get(name=PLATFORM_ADMINS).permissions.values_list("content_type__app_label", "codename"))
    # Support views and redelivers; nothing it can do loses data, costs money or changes a tenant.
    assert {("console", "redeliver_webhook"), ("apikeys", "view_apikey"), ("tenants", "view_tenant")} <= support
    assert {codename for app, codename in support if app == "console"} == {"redeliver_webhook", "view_auditlogentry"}
    assert not any(codename.startswith(("change_", "delete_", "add_")) for _, codename in support)
    assert {
        ("console", "revoke_apikey"), ("console", "suspend_tenant"), ("console", "restore_tenant"),
        ("console", "change_tier"), ("console", "configure_cdn"), ("console", "invalidate_cdn"),
    } <= admins  # fmt: skip
    # Deletes only where a service deletes (with the gateway, webhooks and the audit), never a bare row.
    deletes = {(app, codename) for app, codename in admins if codename.startswith("delete_")}
    assert deletes == {("tenants", "delete_tenant"), ("tenants", "delete_website"), ("webhooks", "delete_endpoint")}


def test_revoke_confirms_then_revokes_and_audits(platform_admin, client_for, tenant, make_key,
                                                 django_capture_on_commit_callbacks):  # fmt: skip
    api_key, raw_key = make_key(tenant, name="ci-deploy")
    client = client_for(platform_admin)
    data = {"action": "revoke_selected", "_selected_action": [str(api_key.pk)]}
    confirm = client.post(KEYS, data)
    assert confirm.status_code == 200 and b"Revoke API keys" in confirm.content and b"ci-deploy" in confirm.content
    missing_reason = client.post(KEYS, {**data, "apply": "1"})
    assert missing_reason.status_code == 200 and b"This field is required" in missing_reason.content
    assert not AuditLogEntry.objects.exists() and ApiKey.objects.get().revoked_at is None
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(KEYS, {**data, "apply": "1", "reason": "leaked in a CI log"}, follow=True)
    assert b"1 key(s) revoked." in done.content
    assert _api_status(raw_key) == 401
    entry = AuditLogEntry.objects.get()
    assert (entry.actor, entry.actor_username, entry.action, entry.target_id, entry.reason, entry.outcome) == (
        platform_admin, "pat-admin", "apikey.revoke", str(api_key.pk), "leaked in a CI log", "done",
    )  # fmt: skip
    assert entry.detail["key"] == api_key.display

    # Again: the service refuses, nothing changes, and the attempt is on record.
    again = client.post(KEYS, {**data, "apply": "1", "reason": "twice"}, follow=True)
    assert b"already revoked" in again.content
    refused = AuditLogEntry.objects.filter(outcome=AuditLogEntry.Outcome.REFUSED).get()
    assert refused.reason == "twice" and "already revoked" in refused.detail["error"]


def test_support_cannot_revoke_in_the_page_or_by_direct_post(support_user, client_for, tenant, make_key):
    api_key, raw_key = make_key(tenant)
    client = client_for(support_user)
    changelist = client.get(KEYS)
    assert changelist.status_code == 200 and api_key.display in changelist.content.decode()
    assert b'value="revoke_selected"' not in changelist.content
    for extra in ({}, {"apply": "1", "reason": "I should not"}):
        response = client.post(KEYS, {"action": "revoke_selected", "_selected_action": [str(api_key.pk)], **extra})
        assert response.status_code == 403
    assert ApiKey.objects.get().revoked_at is None and _api_status(raw_key) == 200
    assert not AuditLogEntry.objects.exists()


def test_suspend_stops_api_access_at_once_and_reactivate_restores_it(
    platform_admin, support_user, client_for, tenant, make_key, django_capture_on_commit_callbacks
):
    _, raw_key = make_key(tenant)
    data = {"action": "suspend_selected", "_selected_action": [str(tenant.pk)], "apply": "1", "reason": "abuse"}
    assert client_for(support_user).post("/admin/tenants/tenant/", data).status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        client_for(platform_admin).post("/admin/tenants/tenant/", data)
    assert Tenant.objects.get().status == Tenant.Status.SUSPENDED and _api_status(raw_key) == 403
    with django_capture_on_commit_callbacks(execute=True):
        client_for(platform_admin).post(
            "/admin/tenants/tenant/", {**data, "action": "reactivate_selected", "reason": "paid"}
        )
    assert Tenant.objects.get().status == Tenant.Status.ACTIVE and _api_status(raw_key) == 200
    assert list(AuditLogEntry.objects.order_by("id").values_list("action", "reason")) == [
        ("tenant.suspend", "abuse"),
        ("tenant.reactivate", "paid"),
    ]


def test_invalidation_is_for_platform_admins_and_the_record_names_the_paths(
    support_user, platform_admin, client_for, website
):
    data = {"action": "invalidate_cdn_cache", "_selected_action": [str(website.pk)], "apply": "1",
            "paths": "/pricing/\n/blog/*", "reason": "price change"}  # fmt: skip
    assert client_for(support_user).post("/admin/tenants/website/", data).status_code == 403
    assert not Invalidation.objects.exists()
    response = client_for(platform_admin).post("/admin/tenants/website/", data, follow=True)
    assert b"1 invalidation(s) queued." in response.content
    invalidation = Invalidation.objects.get()
    assert invalidation.paths == ["/pricing/", "/blog/*"] and invalidation.reason == "price change"
    entry = AuditLogEntry.objects.get()
    assert entry.action == "website.invalidate_cdn" and entry.detail["invalidation"] == str(invalidation.pk)
    assert entry.detail["paths"] == ["/pricing/", "/blog/*"] and entry.actor_username == "pat-admin"


def test_support_cannot_roll_back(support_user, client_for, website):
    data = {"action": "rollback_selected", "_selected_action": [str(website.pk)], "apply": "1", "reason": "x"}
    assert client_for(support_user).post("/admin/tenants/website/", data).status_code == 403


def test_audit_log_is_read_only_even_for_superusers(admin_client, platform_admin, client_for, tenant):
    from console.services import audit_record

    entry = audit_record(actor=platform_admin, action="tenant.suspend", target=tenant, reason="why")
    assert admin_client.get("/admin/console/auditlogentry/").status_code == 200
    assert admin_client.get(f"/admin/console/auditlogentry/{entry.pk}/change/").status_code == 200
    assert admin_client.post(f"/admin/console/auditlogentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.get("/admin/console/auditlogentry/add/").status_code == 403
    assert client_for(platform_admin).get("/admin/console/auditlogentry/").status_code == 200
    assert AuditLogEntry.objects.filter(pk=entry.pk).exists()
