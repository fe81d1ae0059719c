"""Keys cannot be escalated or multiplied: rotation follows the rules of creation."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apikeys import services
from apikeys.models import ApiKey
from tests.apikeys.conftest import error_of

pytestmark = pytest.mark.django_db

V1 = "/api/v1"


def test_rotation_never_yields_a_key_with_scopes_the_caller_lacks(tenant, make_key, key_client):
    """Reproduction: a keys:manage-only key rotated a websites:write key and got a key that could create websites."""
    powerful, _ = make_key(tenant, ["websites:write", "websites:read"], name="deploy")
    _, raw_manager = make_key(tenant, ["keys:manage"], name="manager")
    manager = key_client(raw_manager)
    error = error_of(
        manager.post(f"{V1}/keys/{powerful.pk}/rotate/", {"grace_seconds": 0}, format="json"), 403, "insufficient_scope"
    )
    assert "websites:read, websites:write" in error["fields"]["scopes"][0]
    powerful.refresh_from_db()
    assert powerful.rotated_to_id is None and powerful.expires_at is None and ApiKey.objects.count() == 2
    # A key holding every scope of the rotated key may rotate it.
    _, raw_admin = make_key(tenant, ["keys:manage", "websites:write", "websites:read"], name="admin")
    rotated = key_client(raw_admin).post(f"{V1}/keys/{powerful.pk}/rotate/", {"grace_seconds": 0}, format="json")
    assert rotated.status_code == 201 and rotated.json()["scopes"] == ["websites:read", "websites:write"]


def test_rotation_counts_against_the_creation_limit(tenant, make_key, key_client, settings):
    settings.API_KEY_CREATE_RATE = "2/h"  # hour windows: no roll-over mid-test
    _, raw_key = make_key(tenant, ["keys:manage"])
    client = key_client(raw_key)
    first = client.post(f"{V1}/keys/", {"name": "a", "scopes": ["keys:manage"]}, format="json")
    assert first.status_code == 201
    rotated = client.post(f"{V1}/keys/{first.json()['id']}/rotate/", {"grace_seconds": 0}, format="json")
    assert rotated.status_code == 201
    error_of(client.post(f"{V1}/keys/{rotated.json()['id']}/rotate/", {}, format="json"), 429, "rate_limited")
    error_of(client.post(f"{V1}/keys/", {"name": "b", "scopes": ["keys:manage"]}, format="json"), 429, "rate_limited")


def test_a_rotated_key_cannot_be_rotated_again_and_grace_is_bounded(tenant, make_key, key_client, settings):
    old, raw_key = make_key(tenant, ["keys:manage"])
    client = key_client(raw_key)
    too_long = settings.API_KEY_ROTATION_MAX_GRACE_SECONDS + 1
    error = error_of(client.post(f"{V1}/keys/{old.pk}/rotate/", {"grace_seconds": too_long}, format="json"), 400,
                     "invalid")  # fmt: skip
    assert "grace_seconds" in error["fields"]
    assert client.post(f"{V1}/keys/{old.pk}/rotate/", {"grace_seconds": 3600}, format="json").status_code == 201
    # The old key still works during its grace period, but cannot spawn another key by rotating again.
    error_of(client.post(f"{V1}/keys/{old.pk}/rotate/", {"grace_seconds": 3600}, format="json"), 409, "invalid_state")
    assert ApiKey.objects.count() == 2
    old.refresh_from_db()
    assert old.expires_at <= timezone.now() + timedelta(seconds=3600)


def test_active_keys_per_tenant_are_capped(tenant, make_key, settings):
    settings.API_KEY_MAX_ACTIVE_PER_TENANT = 3
    keys = [make_key(tenant, ["usage:read"], name=f"k{i}")[0] for i in range(3)]
    with pytest.raises(Exception, match="3 active keys") as refused:
        services.apikey_create(tenant=tenant, name="fourth", scopes=["usage:read"])
    assert refused.value.code == "too_many_keys" and refused.value.status_code == 409
    with pytest.raises(Exception, match="3 active keys"):  # a rotation adds a key too
        services.apikey_rotate(api_key=keys[0], grace_seconds=60)
    services.apikey_revoke(api_key=keys[1], revoked_by="test")
    assert services.apikey_create(tenant=tenant, name="fourth", scopes=["usage:read"])
