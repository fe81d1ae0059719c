import io
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from tenants.models import Deployment, Tenant, Website
from tests.conftest import REPO_ROOT
from tests.sitebundles import bundle_build, site_v1

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


def test_tenant_limit_sets_burst_and_monthly_quota_audited_and_reaches_the_gateway(
    tenant, django_capture_on_commit_callbacks, capsys
):
    """Beside the per-minute override, the plan's burst and monthly quota: each a number or 'tier' (back to
    the tier's plan), audited with the reason, applied by the gateway from the next request."""
    import getpass

    from rest_framework.test import APIClient

    from apikeys import services as apikey_services
    from console.models import AuditLogEntry

    with django_capture_on_commit_callbacks(execute=True):
        _, raw_key = apikey_services.apikey_create(tenant=tenant, name="k", scopes=["websites:read"])
    api = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    with django_capture_on_commit_callbacks(execute=True):
        call_command("tenant", "limit", tenant.slug, "--burst", "7", "--monthly-quota", "9000", "--reason", "pilot")
    policy = api.get("/api/v1/websites/")["RateLimit-Policy"]
    assert '"burst";q=7;w=1' in policy and '"minute";q=1000;w=60' in policy and '"month";q=9000;' in policy
    assert "burst 7/s" in capsys.readouterr().out
    with django_capture_on_commit_callbacks(execute=True):
        call_command("tenant", "limit", tenant.slug, "600", "--burst", "tier", "--reason", "pilot over")
    found = Tenant.objects.get(pk=tenant.pk)
    assert (found.rate_limit_override, found.burst_override, found.monthly_quota_override) == (600, None, 9000)
    assert '"burst"' not in api.get("/api/v1/websites/")["RateLimit-Policy"]

    entries = list(AuditLogEntry.objects.order_by("id").values_list("action", "actor_username", "source", "reason",
                                                                     "detail"))  # fmt: skip
    user = getpass.getuser()
    assert entries == [
        ("tenant.change_tier", user, "cli", "pilot", {"burst_override": 7, "monthly_quota_override": 9000}),
        ("tenant.change_tier", user, "cli", "pilot over", {"rate_limit_override": 600, "burst_override": None}),
    ]
    for args, message in (
        (["limit", tenant.slug, "--reason", "x"], "give a per-minute limit, --burst or --monthly-quota"),
        (["limit", tenant.slug, "--burst", "many", "--reason", "x"], "--burst: give a number"),
        (["limit", tenant.slug, "--monthly-quota", "0", "--reason", "x"], "monthly_quota_override"),
        (["limit", tenant.slug, "--burst", "5"], "--reason"),
    ):
        with pytest.raises(CommandError, match=message):
            call_command("tenant", *args)
    assert Tenant.objects.get(pk=tenant.pk).monthly_quota_override == 9000


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_suspend_and_delete_ask_first_and_refuse_without_a_terminal(tenant, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    for action in ("suspend", "delete"):
        with pytest.raises(CommandError, match=f"not a terminal; run again with --yes to {action}"):
            call_command("tenant", action, tenant.slug, "--reason", "cleanup")
    monkeypatch.setattr("sys.stdin", Terminal("no\n"))
    with pytest.raises(CommandError, match="not confirmed: nothing changed"):
        call_command("tenant", "delete", str(tenant.pk), "--reason", "cleanup")
    assert Tenant.objects.get(pk=tenant.pk).status == "active"
    assert "Delete tenant Tenant A (tenant-a) with its websites" in capsys.readouterr().out

    monkeypatch.setattr("sys.stdin", Terminal("yes\n"))
    call_command("tenant", "suspend", str(tenant.pk), "--reason", "abuse")  # by id, confirmed at the prompt
    assert Tenant.objects.get(pk=tenant.pk).status == "suspended"
    call_command("tenant", "delete", tenant.slug, "--reason", "closed", "--yes")
    assert not Tenant.objects.filter(pk=tenant.pk).exists()


def test_websites_are_found_by_tenant_slug_and_name(tenant, website, tmp_path, capsys):
    from tenants import services

    other = services.tenant_create(name="Tenant B", slug="tenant-b", tier="free")
    services.website_create(tenant=other, name="Site A")
    bundle = tmp_path / "site.tar.gz"
    bundle.write_bytes(bundle_build(site_v1()))
    with pytest.raises(
        CommandError, match="several websites are named 'Site A'; use the id, a hostname or tenant-slug/name"
    ):
        call_command("deploy", "Site A", str(bundle))
    call_command("deploy", "tenant-a/Site A", str(bundle))
    assert "is live" in capsys.readouterr().out
    assert website.deployments.count() == 1
    with pytest.raises(CommandError, match="no website with id, hostname or name 'Nope'"):
        call_command("deploy", "tenant-a/Nope", str(bundle))


@pytest.mark.django_db(transaction=True)
def test_commands_are_quiet_by_default_and_log_with_v2(test_database_env, tmp_path):
    """deploy's own lines on stdout, none of the platform's INFO log lines on stderr unless -v 2."""
    from tenants import services

    tenant = services.tenant_create(name="Quiet", slug="quiet", tier="free")
    website = services.website_create(tenant=tenant, name="Quiet site")
    bundle = tmp_path / "site.tar.gz"
    bundle.write_bytes(bundle_build(site_v1()))
    env = {key: value for key, value in test_database_env.items() if key != "LOG_LEVEL"}
    command = [sys.executable, "manage.py", "deploy", str(website.pk), str(bundle), "--description"]

    quiet = subprocess.run([*command, "quiet"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0, quiet.stderr
    assert "deployment #1 is live" in quiet.stdout
    assert " INFO " not in quiet.stdout + quiet.stderr

    verbose = subprocess.run(
        [*command, "verbose", "-v", "2"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert verbose.returncode == 0, verbose.stderr
    assert "deployment #2 is live" in verbose.stdout
    assert " INFO tenants.deployments deployment succeeded" in verbose.stderr
