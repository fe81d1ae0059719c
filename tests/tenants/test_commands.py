import pytest
from django.core.management import CommandError, call_command

from tenants.models import Deployment, Tenant, Website

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent():
    call_command("seed_demo")
    call_command("seed_demo")
    assert set(Tenant.objects.values_list("tier", flat=True)) == {"professional", "free"}
    assert Website.objects.count() == 3
    assert Deployment.objects.count() == 6


def test_demo_superuser_refused_in_real_mode():
    with pytest.raises(CommandError, match="embedded mode only"):
        call_command("ensure_demo_superuser")


def test_tenant_command_is_audited_with_the_os_user_and_reaches_the_gateway(
    tenant, django_capture_on_commit_callbacks, capsys
):
    import getpass

    from rest_framework.test import APIClient

    from apikeys import services as apikey_services
    from console.models import AuditLogEntry

    with django_capture_on_commit_callbacks(execute=True):
        _, raw_key = apikey_services.apikey_create(tenant=tenant, name="k", scopes=["websites:read"])
    api = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert api.get("/api/v1/websites/")["X-RateLimit-Limit"] == "1000"
    with django_capture_on_commit_callbacks(execute=True):
        call_command("tenant", "tier", tenant.slug, "professional", "--reason", "upgrade, invoice 12")
    assert api.get("/api/v1/websites/")["X-RateLimit-Limit"] == "5000"
    with django_capture_on_commit_callbacks(execute=True):
        call_command("tenant", "limit", str(tenant.pk), "7000", "--reason", "launch")
    assert api.get("/api/v1/websites/")["X-RateLimit-Limit"] == "7000"
    with django_capture_on_commit_callbacks(execute=True):
        call_command("tenant", "suspend", tenant.slug, "--reason", "abuse report 3", "--yes")
    assert api.get("/api/v1/websites/").status_code == 403
    assert "suspended" in capsys.readouterr().out

    entries = list(AuditLogEntry.objects.order_by("id").values_list("action", "actor_username", "source", "reason"))
    user = getpass.getuser()
    assert entries == [
        ("tenant.change_tier", user, "cli", "upgrade, invoice 12"),
        ("tenant.change_tier", user, "cli", "launch"),
        ("tenant.suspend", user, "cli", "abuse report 3"),
    ]
    for args, message in (
        (["suspend", tenant.slug], "--reason"),
        (["suspend", tenant.slug, "--reason", " "], "--reason is required"),
        (["suspend", "nope", "--reason", "x"], "no tenant"),
        (["limit", tenant.slug, "lots", "--reason", "x"], "give a number"),
        (["limit", tenant.slug, "0", "--reason", "x"], "Between 1 and"),
        (["tier", tenant.slug, "platinum", "--reason", "x"], "invalid choice"),
        (["suspend", tenant.slug, "--reason", "twice", "--yes"], "already suspended"),
    ):
        with pytest.raises(CommandError, match=message):
            call_command("tenant", *args)
    assert Tenant.objects.get().rate_limit_override == 7000
