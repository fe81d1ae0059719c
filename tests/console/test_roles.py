"""The role map in the admin: every action of every console ModelAdmin, offered and performed exactly for the
roles the map allows (the API's side is tests/hardening/test_isolation.py's operator dimension)."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client, RequestFactory

from console.models import AuditLogEntry
from console.roles import CONSOLE_APPS, PLATFORM_ADMINS, SUPPORT

pytestmark = pytest.mark.django_db

ADMIN, REDELIVER, CHECK = "admin", "redeliver", "check"  # CHECK: looks only (DNS records)
ACTIONS = {
    ("tenants", "tenant", "suspend_selected"): ADMIN,
    ("tenants", "tenant", "reactivate_selected"): ADMIN,
    ("tenants", "tenant", "delete_through_service"): ADMIN,
    ("tenants", "website", "invalidate_cdn_cache"): ADMIN,
    ("tenants", "website", "rollback_selected"): ADMIN,
    ("tenants", "website", "delete_through_service"): ADMIN,
    ("apikeys", "apikey", "revoke_selected"): ADMIN,
    ("webhooks", "endpoint", "disable_selected"): ADMIN,
    ("webhooks", "endpoint", "enable_selected"): ADMIN,
    ("webhooks", "endpoint", "reset_breaker"): ADMIN,
    ("webhooks", "endpoint", "replay_failed"): REDELIVER,
    ("webhooks", "endpoint", "delete_through_service"): ADMIN,
    ("webhooks", "delivery", "redeliver_selected"): REDELIVER,
    ("backups", "tenantexport", "restore_tenant"): ADMIN,
    ("tenants", "hostname", "check_now"): CHECK,
}
ROLES = {SUPPORT: {REDELIVER, CHECK}, PLATFORM_ADMINS: {REDELIVER, ADMIN, CHECK}, None: set()}


def _user(django_user_model, role):
    user = django_user_model.objects.create_user(username=f"u-{role or 'none'}", password="pw-123456-x", is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def _console_admins():
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label in CONSOLE_APPS:
            yield model, model_admin


def test_every_action_of_the_console_is_in_the_table(django_user_model):
    root = django_user_model.objects.create_superuser(username="root", password="root-pass-123")
    request = RequestFactory().get("/admin/")
    request.user = root
    found = {
        (model._meta.app_label, model._meta.model_name, name)
        for model, model_admin in _console_admins()
        for name in model_admin.get_actions(request)
    }
    assert found == set(ACTIONS)  # and "delete_selected" (a bare row delete) is nowhere


@pytest.mark.parametrize("role", list(ROLES), ids=lambda role: role or "no-role")
def test_actions_are_offered_and_performed_only_as_the_map_allows(role, django_user_model, settings):
    from backups.models import TenantExport
    from tenants.models import Tenant
    from tests.hardening.conftest import tenant_with_everything

    settings.WEBHOOKS_ALLOW_HTTP, settings.WEBHOOKS_ALLOWED_NETWORKS = True, ["127.0.0.0/8"]  # its endpoint
    tenant = Tenant.objects.get(pk=tenant_with_everything("roles").tenant)  # a row in every list
    TenantExport.objects.create(status=TenantExport.Status.SUCCEEDED, location="tenant-exports/x.tar.gz")
    user = _user(django_user_model, role)
    client = Client()
    client.force_login(user)
    for (app, model, name), needs in ACTIONS.items():
        changelist = f"/admin/{app}/{model}/"
        page = client.get(changelist)
        if ROLES[role] or role is None:
            # No role: not even the list (nothing granted); a role: the list, with the allowed actions only.
            assert page.status_code == (200 if role else 403), (changelist, page.status_code)
        offered = f'value="{name}"'.encode() in page.content
        assert offered == (needs in ROLES[role]), (role, name)
        if needs not in ROLES[role]:
            data = {"action": name, "_selected_action": [str(tenant.pk)], "apply": "1", "reason": "not allowed"}
            assert client.post(changelist, data).status_code == 403, (role, name)
    assert not AuditLogEntry.objects.exists()
    tenant.refresh_from_db()
    assert tenant.is_active


@pytest.mark.parametrize(("role", "status"), [(SUPPORT, 200), (PLATFORM_ADMINS, 200), (None, 403)])
def test_the_dashboard_is_for_roles_only(role, status, django_user_model, db):
    client = Client()
    client.force_login(_user(django_user_model, role))
    response = client.get("/admin/console/")
    assert response.status_code == status
    assert (b"Tenants by tier" in response.content) == (status == 200)


# The buttons on an object's page (unfold's actions_detail): (app, model, URL path) -> who may use them.
BUTTONS = {
    ("tenants", "tenant", "suspend"): ADMIN,
    ("tenants", "tenant", "reactivate"): ADMIN,
    ("tenants", "website", "rollback"): ADMIN,
    ("tenants", "website", "invalidate"): ADMIN,
    ("apikeys", "apikey", "revoke"): ADMIN,
    ("webhooks", "endpoint", "replay"): REDELIVER,
    ("webhooks", "endpoint", "disable"): ADMIN,
    ("webhooks", "endpoint", "enable"): ADMIN,
    ("webhooks", "delivery", "redeliver"): REDELIVER,
    ("backups", "tenantexport", "restore"): ADMIN,
}


def test_every_button_of_an_object_page_is_in_the_table():
    found = {
        (model._meta.app_label, model._meta.model_name, model_admin.get_unfold_action(name).path)
        for model, model_admin in _console_admins()
        for name in getattr(model_admin, "actions_detail", ())
    }
    assert found == set(BUTTONS)


@pytest.mark.parametrize("role", list(ROLES), ids=lambda role: role or "no-role")
def test_object_page_buttons_are_offered_and_work_only_as_the_map_allows(role, django_user_model, settings):
    from backups.models import TenantExport
    from tests.hardening.conftest import tenant_with_everything

    settings.WEBHOOKS_ALLOW_HTTP, settings.WEBHOOKS_ALLOWED_NETWORKS = True, ["127.0.0.0/8"]
    objects = tenant_with_everything("buttons")
    export = TenantExport.objects.create(status=TenantExport.Status.SUCCEEDED, location="tenant-exports/x.tar.gz")
    pks = {"tenant": objects.tenant, "website": objects.website, "apikey": objects.key,
           "endpoint": objects.endpoint, "delivery": objects.delivery, "tenantexport": str(export.pk)}  # fmt: skip
    client = Client()
    client.force_login(_user(django_user_model, role))
    for (app, model, url_path), needs in BUTTONS.items():
        page = client.get(f"/admin/{app}/{model}/{pks[model]}/change/")
        assert page.status_code == (200 if role else 403), (role, model, page.status_code)
        button = f"/admin/{app}/{model}/{pks[model]}/{url_path}/"
        assert (f'href="{button}"'.encode() in page.content) == (needs in ROLES[role]), (role, button)
        confirmation = client.get(button)
        if needs in ROLES[role]:
            assert (
                confirmation.status_code == 200
                and b'name="apply"' in confirmation.content
                or (model == "tenantexport" and b'name="dry_run"' in confirmation.content)
            ), (role, button)
        else:
            assert confirmation.status_code == 403, (role, button, confirmation.status_code)
            assert client.post(button, {"apply": "1", "reason": "not allowed"}).status_code == 403, (role, button)
    assert not AuditLogEntry.objects.exists()
