import io

import pytest
from django.core.management import CommandError, call_command

from apikeys.keyformat import parse_key
from apikeys.models import ApiKey

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

    assert "revoked" in _run("revoke", str(api_key.pk), "--reason", "rotation")
    api_key.refresh_from_db()
    assert api_key.revoked_reason == "rotation" and api_key.revoked_by == "command:apikey"
    assert "revoked" in _run("list")


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
        (["revoke", "not-a-uuid"], "no API key"),
    ],
)
def test_bad_input_exits_with_one_clear_line(tenant, args, message):
    with pytest.raises(CommandError, match=message):
        _run(*args)
    assert ApiKey.objects.count() == 0


def test_revoking_twice_is_a_clear_error(tenant):
    raw_key = _run("create", "--tenant", tenant.slug, "--name", "x", "--scope", "usage:read").splitlines()[-1]
    api_key = ApiKey.objects.get(lookup_id=parse_key(raw_key).lookup_id)
    _run("revoke", str(api_key.pk))
    with pytest.raises(CommandError, match="already revoked"):
        _run("revoke", str(api_key.pk))
