"""The tier belongs to the tenant: one limit over all its keys, a key's own limit only lowers it, and only
an operator raises a tenant above its tier (audited). Through the real gateway and Redis."""

import re
import threading

import pytest

from apikeys import services
from apikeys.gateway import base
from apikeys.gateway.memory_store import MemoryGatewayStore
from apikeys.keyformat import parse_key
from console.models import AuditLogEntry
from tenants import services as tenant_services
from tests.apikeys.conftest import error_of

pytestmark = pytest.mark.django_db

V1 = "/api/v1"


@pytest.fixture
def free_tenant(db):
    return tenant_services.tenant_create(name="Free Co", slug="free-co", tier="free")


def _admitted(client, count: int) -> int:
    return sum(client.get(f"{V1}/websites/").status_code == 200 for _ in range(count))


def test_the_tier_limit_covers_all_the_tenants_keys(free_tenant, make_key, key_client):
    """Reproduction: a second (or tenth) key gave a Free tenant another 100 requests a minute."""
    clients = [key_client(make_key(free_tenant, ["websites:read"], name=f"k{i}")[1]) for i in range(4)]
    admitted = [_admitted(client, 30) for client in clients]  # 120 attempts over 4 keys
    assert sum(admitted) == 100 and admitted[:3] == [30, 30, 30]
    response = clients[0].get(f"{V1}/websites/")
    error_of(response, 429, "rate_limited")
    assert response["RateLimit"].startswith('"minute";r=0;')
    assert response["RateLimit-Policy"].startswith('"minute";q=100;w=60, "month";q=100000;w=')


def test_a_key_cannot_raise_its_own_limit(free_tenant, make_key, key_client):
    """Reproduction: a tenant gave its own key rate_limit_per_minute 10000000 and 1,134 of 1,134 requests passed."""
    _, raw_key = make_key(free_tenant, ["keys:manage", "websites:read"])
    client = key_client(raw_key)
    body = {"name": "fast", "scopes": ["websites:read"], "rate_limit_per_minute": 10_000_000}
    error = error_of(client.post(f"{V1}/keys/", body, format="json"), 400, "invalid")
    assert "100" in error["fields"]["rate_limit_per_minute"][0]
    lower = client.post(f"{V1}/keys/", {**body, "rate_limit_per_minute": 5}, format="json")
    assert lower.status_code == 201, lower.content
    assert _admitted(key_client(lower.json()["key"]), 8) == 5  # the key's own, lower limit
    # The service refuses it whatever the surface (admin, command, API).
    api_key = services.apikey_create(tenant=free_tenant, name="ok", scopes=["websites:read"])[0]
    with pytest.raises(Exception, match="invalid") as refused:
        services.apikey_update(api_key=api_key, rate_limit_per_minute=101)
    assert refused.value.fields["rate_limit_per_minute"]


def test_ratelimit_headers_report_the_policy_closest_to_its_limit(free_tenant, make_key, key_client):
    _, raw_busy = make_key(free_tenant, ["websites:read"], name="busy")
    _, raw_own = make_key(free_tenant, ["websites:read"], name="own", rate_limit_per_minute=50)
    own = key_client(raw_own)
    first = own.get(f"{V1}/websites/")
    assert first["RateLimit-Policy"].startswith('"minute";q=100;w=60, "key";q=50;w=60, "month";q=100000;w=')
    assert re.fullmatch(r'"key";r=49;t=\d+', first["RateLimit"])  # 49 left of the key's, 99 of the tenant's
    assert _admitted(key_client(raw_busy), 80) == 80
    second = own.get(f"{V1}/websites/")  # the tenant has 19 left, the key 48: the tenant's is closer
    assert re.fullmatch(r'"minute";r=18;t=\d+', second["RateLimit"]) and second["X-RateLimit-Limit"] == "100"
    assert _admitted(own, 30) == 18
    refused = own.get(f"{V1}/websites/")
    error_of(refused, 429, "rate_limited")
    assert (
        refused["RateLimit"].startswith('"minute";r=0;')
        and '"minute" limit of 100' in refused.json()["error"]["message"]
    )


def test_exact_under_concurrency_over_four_keys(free_tenant, make_key):
    """64 threads on 4 keys of one Free tenant: exactly 100 admitted in all, never one more."""
    from apikeys.gateway.decision import decide

    parsed = [parse_key(make_key(free_tenant, ["websites:read"], name=f"c{i}")[1]) for i in range(4)]
    for key in parsed:
        assert decide(key).code == base.OK
    store = base.gateway_store()
    store.reset_limit(parsed[0].lookup_id, str(free_tenant.pk))
    admitted, start = [], threading.Barrier(64)

    def client(key):
        start.wait()
        count = 0
        for _ in range(3):
            decision = store.evaluate(lookup_id=key.lookup_id, secret_hash=key.secret_hash, outcomes=[])
            count += decision.code == base.OK
        admitted.append(count)

    threads = [threading.Thread(target=client, args=(parsed[i % 4],)) for i in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == 100


def test_memory_store_applies_the_tenant_window_too():
    from apikeys.keyformat import generate_key

    store = MemoryGatewayStore()
    keys = [generate_key("test")[1] for _ in range(3)]
    for index, key in enumerate(keys):
        limit = "10" if index == 2 else ""
        store.put_record(key.lookup_id, {"h": key.secret_hash, "id": f"k{index}", "t": "t1", "sc": "websites:read",
                                         "exp": "0", "lim": limit, "rev": "0"})  # fmt: skip
    store.put_tenant("t1", base.tenant_fields(status="active", tier="free", burst=None, minute=20, quota=None,
                                             month="", month_units=0))  # fmt: skip
    codes = []
    for _ in range(12):
        decision = store.evaluate(lookup_id=keys[2].lookup_id, secret_hash=keys[2].secret_hash, outcomes=[])
        codes.append(decision.code)
    assert codes.count(base.OK) == 10 and decision.policy == base.KEY_POLICY and decision.limit == 10
    others = [store.evaluate(lookup_id=k.lookup_id, secret_hash=k.secret_hash, outcomes=[]) for k in keys[:2] * 6]
    assert sum(d.code == base.OK for d in others) == 10  # the tenant's 20, 10 of which key 2 used
    refused = others[-1]
    assert refused.code == base.RATE_LIMITED and (refused.policy, refused.limit) == (base.MINUTE_POLICY, 20)
    store.put_record(keys[0].lookup_id, base.removed_record_fields(key_id="k0", tenant_id="t1",
                                                                        secret_hash=keys[0].secret_hash))  # fmt: skip
    assert store.evaluate(lookup_id=keys[0].lookup_id, secret_hash=keys[0].secret_hash, outcomes=[]).code == (
        base.INVALID
    )


def test_only_an_operator_raises_a_tenant_above_its_tier_audited_and_at_once(
    free_tenant, make_key, key_client, staff_client, django_user_model, django_capture_on_commit_callbacks
):
    from django.contrib.auth.models import Group
    from rest_framework.test import APIClient

    from console.roles import SUPPORT

    client = key_client(make_key(free_tenant, ["websites:read"])[1])
    path, body = f"{V1}/tenants/{free_tenant.pk}/", {"rate_limit_override": 150}
    error_of(client.patch(path, body, format="json"), 403, "operators_only")  # a key: never (1 of its 100)
    assert _admitted(client, 100) == 99 and client.get(f"{V1}/websites/").status_code == 429
    support = django_user_model.objects.create_user(username="sam", password="sam-pass-123", is_staff=True)
    support.groups.add(Group.objects.get(name=SUPPORT))
    as_support = APIClient()
    as_support.force_login(support)
    error_of(as_support.patch(path, body, format="json"), 403, "operator_forbidden")

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.patch(path, body, format="json", HTTP_X_OPERATOR_REASON="launch week, ticket 7")
    assert response.status_code == 200 and response.json()["requests_per_minute"] == 150
    assert _admitted(client, 60) == 50  # the next request already counts against 150
    entry = AuditLogEntry.objects.get(action="tenant.change_tier")
    assert (entry.actor_username, entry.source, entry.reason) == ("operator", "api", "launch week, ticket 7")
    assert entry.detail == {"rate_limit_override": 150} and entry.target_id == str(free_tenant.pk)
    # A key may now have up to the raised limit, not more.
    assert services.apikey_create(tenant=free_tenant, name="x", scopes=["usage:read"], rate_limit_per_minute=150)
