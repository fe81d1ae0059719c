import getpass
import io

import pytest
from django.core.management import CommandError, call_command

from apikeys.keyformat import parse_key
from apikeys.models import ApiKey
from console.models import AuditLogEntry

pytestmark = pytest.mark.django_db


def _run(*args) -> str:
    out = io.StringIO()
    call_command("apikey", *args, stdout=out)
    return out.getvalue()


def test_create_list_revoke(tenant):
    output = _run("create", "--tenant", tenant.slug, "--name", "deploy bot", "--scope", "deployments:write")
    raw_key = output.strip().splitlines()[-1]
    parsed = parse_key(raw_key)
    api_key = ApiKey.objects.get(lookup_id=parsed.lookup_id)
    assert api_key.scopes == ["deployments:write"] and api_key.secret_hash == parsed.secret_hash

    listing = _run("list", "--tenant", tenant.slug)
    assert str(api_key.pk) in listing and api_key.display in listing and raw_key not in listing
    assert "active" in listing

    assert "revoked" in _run("revoke", str(api_key.pk), "--reason", "rotation", "--yes")
    api_key.refresh_from_db()
    os_user = getpass.getuser()
    assert api_key.revoked_reason == "rotation" and api_key.revoked_by == f"command:{os_user}"
    assert "revoked" in _run("list")
    entries = list(AuditLogEntry.objects.order_by("id").values_list("action", "actor_username", "source", "reason"))
    assert entries == [("apikey.create", os_user, "cli", ""), ("apikey.revoke", os_user, "cli", "rotation")]


@pytest.mark.parametrize(
    "args,message",
    [
        (["create", "--tenant", "nope", "--name", "x", "--scope", "usage:read"], "no tenant"),
        (["create", "--tenant", "tenant-a", "--name", "x", "--scope", "root"], "Unknown scope"),
        (["create", "--tenant", "tenant-a", "--name", " ", "--scope", "usage:read"], "name"),
        (
            ["create", "--tenant", "tenant-a", "--name", "x", "--scope", "usage:read", "--expires-in-days", "0"],
            "at least 1",
        ),
        (["revoke", "not-a-uuid", "--reason", "x"], "no API key"),
        (["revoke", "not-a-uuid"], "--reason"),
    ],
)
def test_bad_input_exits_with_one_clear_line(tenant, args, message):
    with pytest.raises(CommandError, match=message):
        _run(*args)
    assert ApiKey.objects.count() == 0


def test_revoking_twice_is_a_clear_error(tenant):
    raw_key = _run("create", "--tenant", tenant.slug, "--name", "x", "--scope", "usage:read").splitlines()[-1]
    api_key = ApiKey.objects.get(lookup_id=parse_key(raw_key).lookup_id)
    _run("revoke", str(api_key.pk), "--reason", "leaked", "--yes")
    with pytest.raises(CommandError, match="already revoked"):
        _run("revoke", str(api_key.pk), "--reason", "again", "--yes")
    assert list(
        AuditLogEntry.objects.filter(action="apikey.revoke").order_by("id").values_list("outcome", flat=True)
    ) == [
        "done",
        "refused",
    ]


def test_the_role_map_applies_to_commands(tenant, django_user_model, settings):
    """A shell user with an operator account acts with its role; one without, with CLI_OPERATOR_ROLE."""
    from django.contrib.auth.models import Group

    from console.roles import SUPPORT

    raw_key = _run("create", "--tenant", tenant.slug, "--name", "x", "--scope", "usage:read").splitlines()[-1]
    api_key = ApiKey.objects.get(lookup_id=parse_key(raw_key).lookup_id)
    account = django_user_model.objects.create_user(username=getpass.getuser(), password="pw-12345-long", is_staff=True)
    account.groups.add(Group.objects.get(name=SUPPORT))
    with pytest.raises(CommandError, match=r"refused: OS user .* may not do this \(console.revoke_apikey\)"):
        _run("revoke", str(api_key.pk), "--reason", "support tries", "--yes")
    account.delete()
    settings.CLI_OPERATOR_ROLE = ""
    with pytest.raises(CommandError, match="refused"):
        _run("revoke", str(api_key.pk), "--reason", "nobody tries", "--yes")
    api_key.refresh_from_db()
    assert api_key.revoked_at is None and not AuditLogEntry.objects.filter(action="apikey.revoke").exists()


def test_revoke_asks_first_and_tenants_are_named_by_slug_or_id(tenant, monkeypatch):
    raw_key = _run("create", "--tenant", str(tenant.pk), "--name", "x", "--scope", "usage:read").splitlines()[-1]
    api_key = ApiKey.objects.get(lookup_id=parse_key(raw_key).lookup_id)
    assert str(api_key.pk) in _run("list", "--tenant", str(tenant.pk))
    assert str(api_key.pk) in _run("list", "--tenant", tenant.slug)

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(CommandError, match="not a terminal; run again with --yes to revoke"):
        _run("revoke", str(api_key.pk), "--reason", "leaked")
    api_key.refresh_from_db()
    assert api_key.revoked_at is None
    assert not AuditLogEntry.objects.filter(action="apikey.revoke").exists()
    _run("revoke", str(api_key.pk), "--reason", "leaked", "--yes")
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None


# --- naming the key to revoke: its id, what lists show of it (prefix and last four), or its name ----------


def _key(tenant, name: str) -> ApiKey:
    raw_key = _run("create", "--tenant", tenant.slug, "--name", name, "--scope", "usage:read").splitlines()[-1]
    return ApiKey.objects.get(lookup_id=parse_key(raw_key).lookup_id)


def _revoked(api_key) -> bool:
    api_key.refresh_from_db()
    return api_key.revoked_at is not None


@pytest.mark.parametrize("form", ["display", "ascii dots"])
def test_revoke_by_the_displayed_prefix_and_last_four(tenant, form):
    api_key, other = _key(tenant, "ci"), _key(tenant, "other")
    shown = api_key.display if form == "display" else api_key.display.replace("…", "...")
    assert api_key.display in _run("list", "--tenant", tenant.slug)  # what the operator copies from a list
    output = _run("revoke", shown, "--reason", "leaked", "--yes")
    assert f"revoked key id={api_key.pk}" in output
    assert _revoked(api_key) and not _revoked(other)


def test_revoke_by_name_within_a_tenant(tenant):
    from tenants import services as tenant_services

    other_tenant = tenant_services.tenant_create(name="Tenant B", slug="tenant-b", tier="free")
    api_key, same_name_elsewhere = _key(tenant, "deploy bot"), _key(other_tenant, "deploy bot")
    with pytest.raises(CommandError, match=r"--tenant"):  # a name alone could be anyone's
        _run("revoke", "deploy bot", "--reason", "x", "--yes")
    _run("revoke", "deploy bot", "--tenant", tenant.slug, "--reason", "rotated", "--yes")
    assert _revoked(api_key) and not _revoked(same_name_elsewhere)
    # An earlier, revoked key of the same name is no ambiguity: the active one is meant.
    successor = _key(tenant, "deploy bot")
    _run("revoke", "deploy bot", "--tenant", str(tenant.pk), "--reason", "again", "--yes")
    assert _revoked(successor)


def test_an_ambiguous_or_unknown_key_is_a_clear_error_and_nothing_is_revoked(tenant):
    from tenants import services as tenant_services

    first, second = _key(tenant, "twin"), _key(tenant, "twin")
    with pytest.raises(CommandError, match=r"2 active API keys match 'twin'.*" + str(second.pk)) as error:
        _run("revoke", "twin", "--tenant", tenant.slug, "--reason", "x", "--yes")
    assert str(first.pk) in str(error.value) and "by its id" in str(error.value)
    # Two keys showing the same last four (one in 14.8 million, but it happens): named by the display, refused.
    other_tenant = tenant_services.tenant_create(name="Tenant B", slug="tenant-b", tier="free")
    elsewhere = _key(other_tenant, "b")
    ApiKey.objects.filter(pk__in=[first.pk, elsewhere.pk]).update(last_four="AbCd")
    first.refresh_from_db()
    with pytest.raises(CommandError, match=r"2 active API keys match"):
        _run("revoke", first.display, "--reason", "x", "--yes")
    # --tenant narrows the display to one tenant's keys.
    _run("revoke", first.display, "--tenant", tenant.slug, "--reason", "x", "--yes")
    assert _revoked(first) and not _revoked(second) and not _revoked(elsewhere)

    for reference, extra in (
        ("plk_live_…zzzz", []), ("nobody", ["--tenant", tenant.slug]), ("b", ["--tenant", tenant.slug]),
        (str(elsewhere.pk), ["--tenant", tenant.slug]),  # an id of another tenant's key
    ):  # fmt: skip
        with pytest.raises(CommandError, match=r"no API key"):
            _run("revoke", reference, *extra, "--reason", "x", "--yes")
    with pytest.raises(CommandError, match=r"no tenant"):
        _run("revoke", "twin", "--tenant", "nope", "--reason", "x", "--yes")
    assert not _revoked(second) and not _revoked(elsewhere)
    assert AuditLogEntry.objects.filter(action="apikey.revoke").count() == 1


def test_a_revoked_key_named_again_says_so(tenant):
    api_key = _key(tenant, "gone")
    _run("revoke", api_key.display, "--reason", "leaked", "--yes")
    with pytest.raises(CommandError, match="already revoked"):
        _run("revoke", "gone", "--tenant", tenant.slug, "--reason", "again", "--yes")
