import re
import uuid
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from apikeys import services
from apikeys.models import ApiKey
from tenants import services as tenant_services
from tests.apikeys.conftest import error_of
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db
PREFIX = f"plk_{django_settings.PLATFORM_ENVIRONMENT}_"


def test_key_lifecycle_create_use_list_revoke(tenant, make_key, key_client, django_capture_on_commit_callbacks):
    api_key, raw_key = make_key(tenant, ["websites:read", "keys:manage"])
    client = key_client(raw_key)
    assert client.get("/api/v1/websites/").status_code == 200
    assert key_client(raw_key, header="x-api-key").get("/api/v1/websites/").status_code == 200

    listing = client.get("/api/v1/keys/")
    assert listing.status_code == 200
    assert raw_key not in listing.content.decode()
    (item,) = listing.json()["results"]
    assert item["prefix"] == PREFIX and item["last_four"] == raw_key[-4:] and "key" not in item

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/keys/{api_key.pk}/revoke/", {"reason": "leaked"}, format="json")
    assert response.status_code == 200 and response.json()["revoked_at"]
    error_of(client.get("/api/v1/websites/"), 401, "revoked_api_key")
    api_key.refresh_from_db()
    assert api_key.revoked_reason == "leaked" and api_key.revoked_by == f"api-key:{api_key.pk}"


def test_create_via_api_shows_key_once_and_cannot_escalate(tenant, make_key, key_client):
    _, raw_key = make_key(tenant, ["keys:manage", "websites:read"])
    client = key_client(raw_key)
    response = client.post("/api/v1/keys/", {"name": "ci", "scopes": ["websites:read"]}, format="json")
    assert response.status_code == 201, response.content
    new_key = response.json()["key"]
    assert new_key.startswith(PREFIX) and response["Cache-Control"] == "no-store"
    assert new_key not in client.get(f"/api/v1/keys/{response.json()['id']}/").content.decode()
    assert key_client(new_key).get("/api/v1/websites/").status_code == 200

    error = error_of(
        client.post("/api/v1/keys/", {"name": "x", "scopes": ["websites:write"]}, format="json"),
        403,
        "insufficient_scope",
    )
    assert "websites:write" in error["fields"]["scopes"][0]
    error = error_of(client.post("/api/v1/keys/", {"name": "x", "scopes": ["root"]}, format="json"), 400, "invalid")
    assert "scopes" in error["fields"]
    assert ApiKey.objects.count() == 2


def test_rotation_keeps_old_key_for_the_grace_period(tenant, make_key, key_client, django_capture_on_commit_callbacks):
    old, raw_old = make_key(tenant, ["keys:manage", "websites:read"])
    client = key_client(raw_old)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/keys/{old.pk}/rotate/", {"grace_seconds": 1}, format="json")
    assert response.status_code == 201, response.content
    raw_new = response.json()["key"]
    assert key_client(raw_new).get("/api/v1/websites/").status_code == 200
    old.refresh_from_db()
    assert str(old.rotated_to_id) == response.json()["id"] and old.expires_at <= timezone.now() + timedelta(seconds=1)
    # The old key is refused once its grace period is over (checked in Redis, no database write).
    wait_for(lambda: client.get("/api/v1/websites/").status_code == 401, timeout=10)
    error_of(client.get("/api/v1/websites/"), 401, "expired_api_key")
    assert key_client(raw_new).get("/api/v1/websites/").status_code == 200


def test_expired_key_stops_at_its_expiry(tenant, make_key, key_client):
    _, raw_key = make_key(tenant, ["websites:read"], expires_at=timezone.now() + timedelta(seconds=1))
    client = key_client(raw_key)
    assert client.get("/api/v1/websites/").status_code == 200  # cached while valid
    wait_for(lambda: client.get("/api/v1/websites/").status_code == 401, timeout=10)
    error_of(client.get("/api/v1/websites/"), 401, "expired_api_key")


def test_invalid_and_malformed_keys_get_401_without_lookup(tenant, make_key, key_client, django_assert_num_queries):
    _, raw_key = make_key(tenant, ["websites:read"])
    with django_assert_num_queries(0):
        error = error_of(key_client("plk_test_" + "A" * 50).get("/api/v1/websites/"), 401, "invalid_api_key")
    assert error["message"]
    tampered = raw_key[:-7] + ("a" if raw_key[-7] != "a" else "b") + raw_key[-6:]
    with django_assert_num_queries(0):  # checksum fails: no lookup
        response = key_client(tampered).get("/api/v1/websites/")
    error_of(response, 401, "invalid_api_key")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    error_of(key_client("").get("/api/v1/websites/"), 401, "not_authenticated")


# With the scope, each call does what it does for any client: the exact answer proves the request reached
# the view (an empty body is refused by validation, not by the gateway).
SCOPED_CALLS = [
    ("get", "/api/v1/websites/", "websites:read", 200),
    ("get", "/api/v1/websites/{website}/", "websites:read", 200),
    ("get", "/api/v1/websites/{website}/deployments/", "websites:read", 200),
    ("get", "/api/v1/deployments/{deployment}/", "websites:read", 200),
    ("post", "/api/v1/websites/", "websites:write", 400),
    ("patch", "/api/v1/websites/{website}/", "websites:write", 200),
    ("delete", "/api/v1/websites/{website}/", "websites:write", 204),
    ("post", "/api/v1/websites/{website}/deployments/", "deployments:write", 400),
    ("post", "/api/v1/websites/{website}/rollback/", "deployments:write", 409),
    ("get", "/api/v1/websites/{website}/invalidations/", "websites:read", 200),
    ("post", "/api/v1/websites/{website}/invalidations/", "cdn:invalidate", 202),
    ("get", "/api/v1/websites/{website}/cdn/", "websites:read", 200),
    ("get", "/api/v1/keys/", "keys:manage", 200),
    ("post", "/api/v1/keys/", "keys:manage", 400),
    ("get", "/api/v1/usage/", "usage:read", 200),
]


@pytest.mark.parametrize("method,path,scope,status", SCOPED_CALLS)
def test_each_scope_is_enforced(method, path, scope, status, tenant, website, make_key, key_client):
    from apikeys.scopes import SCOPES

    deployment = tenant_services.deployment_create(website=website, run=False)
    url = path.format(website=website.pk, deployment=deployment.pk)
    _, without = make_key(tenant, [s for s in SCOPES if s != scope])
    error = error_of(getattr(key_client(without), method)(url, {}, format="json"), 403, "insufficient_scope")
    assert error["fields"] == {"scope": [scope]}
    _, with_scope = make_key(tenant, [scope])
    response = getattr(key_client(with_scope), method)(url, {}, format="json")
    assert response.status_code == status, response.content


def test_tenant_endpoints_stay_operators_only(tenant, website, make_key, key_client, staff_client):
    _, raw_key = make_key(tenant)  # every scope
    # CDN provider settings name shared infrastructure: operators only, even for the website's own key
    error_of(key_client(raw_key).patch(f"/api/v1/websites/{website.pk}/cdn/", {}, format="json"), 403, "operators_only")
    error_of(key_client(raw_key).get("/api/v1/tenants/"), 403, "operators_only")
    error_of(key_client(raw_key).post(f"/api/v1/tenants/{tenant.pk}/suspend/", {"reason": "x"}), 403, "operators_only")
    assert staff_client.get("/api/v1/tenants/").status_code == 200


def test_a_key_of_tenant_a_gets_404_for_every_object_of_tenant_b(
    tenant, other_tenant, website, make_key, key_client, django_capture_on_commit_callbacks
):
    site_b = tenant_services.website_create(tenant=other_tenant, name="Site B", hostnames=["www.b.test"])
    deployment_b = tenant_services.deployment_create(website=site_b, run=False)
    key_b, _ = make_key(other_tenant)
    _, raw_a = make_key(tenant)
    client = key_client(raw_a)
    calls = [
        ("get", f"/api/v1/websites/{site_b.pk}/", None),
        ("patch", f"/api/v1/websites/{site_b.pk}/", {"name": "stolen"}),
        ("delete", f"/api/v1/websites/{site_b.pk}/", None),
        ("get", f"/api/v1/websites/{site_b.pk}/deployments/", None),
        ("post", f"/api/v1/websites/{site_b.pk}/deployments/", {"description": "x"}),
        ("get", f"/api/v1/deployments/{deployment_b.pk}/", None),
        ("post", f"/api/v1/websites/{site_b.pk}/rollback/", {}),
        ("get", f"/api/v1/websites/{site_b.pk}/invalidations/", None),
        ("post", f"/api/v1/websites/{site_b.pk}/invalidations/", {"paths": ["/"]}),
        ("get", f"/api/v1/websites/{site_b.pk}/cdn/", None),
        ("get", f"/api/v1/keys/{key_b.pk}/", None),
        ("post", f"/api/v1/keys/{key_b.pk}/revoke/", {"reason": "x"}),
        ("post", f"/api/v1/keys/{key_b.pk}/rotate/", {"grace_seconds": 0}),
    ]
    for method, url, data in calls:
        error_of(getattr(client, method)(url, data, format="json"), 404, "not_found")
    names = [item["name"] for item in client.get("/api/v1/websites/").json()["results"]]
    assert names == ["Site A"]
    assert [item["id"] for item in client.get("/api/v1/keys/").json()["results"]] != [str(key_b.pk)]
    # A key's create ignores a tenant it names: the website lands in its own tenant.
    response = client.post("/api/v1/websites/", {"tenant": str(other_tenant.pk), "name": "Mine"}, format="json")
    assert response.status_code == 201 and response.json()["tenant"] == str(tenant.pk)
    key_b.refresh_from_db()
    site_b.refresh_from_db()
    assert key_b.revoked_at is None and site_b.name == "Site B"


def test_suspended_tenant_gets_403_at_once_and_back_on_reactivation(
    tenant, make_key, key_client, django_capture_on_commit_callbacks
):
    _, raw_key = make_key(tenant, ["websites:read"])
    client = key_client(raw_key)
    assert client.get("/api/v1/websites/").status_code == 200  # tenant state now cached in Redis
    with django_capture_on_commit_callbacks(execute=True):
        tenant_services.tenant_suspend(tenant=tenant, reason="unpaid")
    error_of(client.get("/api/v1/websites/"), 403, "tenant_suspended")
    with django_capture_on_commit_callbacks(execute=True):
        tenant_services.tenant_reactivate(tenant=tenant)
    assert client.get("/api/v1/websites/").status_code == 200


def test_headers_on_200_and_429(tenant, make_key, key_client):
    """Both policies are announced; RateLimit reports the one closest to its limit (here the key's own)."""
    _, raw_key = make_key(tenant, ["websites:read"], rate_limit_per_minute=3)
    client = key_client(raw_key)
    for remaining in (2, 1, 0):
        response = client.get("/api/v1/websites/")
        assert response.status_code == 200
        assert response["RateLimit-Policy"].startswith('"minute";q=1000;w=60, "key";q=3;w=60, "month";q=5000000;w=')
        match = re.fullmatch(r'"key";r=(\d+);t=(\d+)', response["RateLimit"])
        assert match and int(match[1]) == remaining and 1 <= int(match[2]) <= 61
        assert response["X-RateLimit-Limit"] == "3" and response["X-RateLimit-Remaining"] == str(remaining)
        assert int(response["X-RateLimit-Reset"]) > timezone.now().timestamp()
    response = client.get("/api/v1/websites/")
    error_of(response, 429, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 61
    assert response["RateLimit"].startswith('"key";r=0;t=') and response["X-RateLimit-Remaining"] == "0"
    assert response["RateLimit-Policy"].startswith('"minute";q=1000;w=60, "key";q=3;w=60, "month";q=5000000;w=')


def test_tier_limit_applies_and_tier_change_takes_effect(
    tenant, make_key, key_client, django_capture_on_commit_callbacks
):
    _, raw_key = make_key(tenant, ["websites:read"])
    client = key_client(raw_key)
    assert client.get("/api/v1/websites/")["X-RateLimit-Limit"] == "1000"
    with django_capture_on_commit_callbacks(execute=True):
        tenant_services.tenant_update(tenant=tenant, tier="enterprise")
    response = client.get("/api/v1/websites/")
    assert response["X-RateLimit-Limit"] == "50000" and response["RateLimit-Policy"] == '"minute";q=50000;w=60'


def test_steady_state_is_one_redis_round_trip_and_no_query(tenant, make_key, django_assert_num_queries):
    from django.http import HttpResponse
    from django.test import RequestFactory

    from apikeys.middleware import ApiGatewayMiddleware
    from benchmarks.probes import RedisRoundTrips

    _, raw_key = make_key(tenant, ["websites:read"])
    seen = {}

    def view(request):
        seen["tenant"], seen["key"] = request.tenant, request.api_key
        return HttpResponse("ok")

    def handler(request):  # as Django's handler: process_view, then the view
        return gateway.process_view(request, view, (), {}) or view(request)

    gateway = ApiGatewayMiddleware(handler)
    request = RequestFactory().get("/api/v1/websites/", HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert gateway(request).status_code == 200  # first use fills the cache from the database
    for _ in range(5):
        with django_assert_num_queries(0), RedisRoundTrips() as trips:
            request = RequestFactory().get("/api/v1/websites/", HTTP_AUTHORIZATION=f"Bearer {raw_key}")
            assert gateway(request).status_code == 200
        assert trips.count == 1
    assert seen["tenant"].pk == tenant.pk and seen["key"].scopes == {"websites:read"}


def test_revoke_service_refuses_twice_and_unknown_key_404(tenant, make_key, staff_client):
    api_key, _ = make_key(tenant, ["websites:read"])
    services.apikey_revoke(api_key=api_key, revoked_by="test", reason="r")
    with pytest.raises(Exception, match="already revoked"):
        services.apikey_revoke(api_key=api_key, revoked_by="test", reason="r")
    error_of(staff_client.post(f"/api/v1/keys/{uuid.uuid4()}/revoke/", {}, format="json"), 404, "not_found")


def test_operator_creates_key_for_a_named_tenant(tenant, staff_client):
    error = error_of(
        staff_client.post("/api/v1/keys/", {"name": "x", "scopes": ["usage:read"]}, format="json"), 400, "invalid"
    )
    assert "tenant" in error["fields"]
    response = staff_client.post(
        "/api/v1/keys/", {"tenant": str(tenant.pk), "name": "ops", "scopes": ["usage:read"]}, format="json"
    )
    assert response.status_code == 201 and response.json()["key"].startswith(PREFIX)
    assert ApiKey.objects.get().created_by.username == "operator"


def test_failed_authentications_are_limited_per_ip(tenant, key_client, settings):
    settings.API_KEY_AUTH_FAILURE_RATE = "5/h"  # hour windows: no roll-over mid-test
    client = key_client("plk_test_" + "B" * 50)
    codes = [client.get("/api/v1/websites/").status_code for _ in range(7)]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]
    error_of(client.get("/api/v1/websites/"), 429, "rate_limited")


def test_admin_login_is_rate_limited(client, settings, db, plain_static):
    # django-ratelimit counts in fixed windows: an hour-long one cannot roll over between these posts
    # (a minute-long one sometimes did, under load)
    settings.ADMIN_LOGIN_RATE = "3/h"
    codes = [
        client.post("/admin/login/", {"username": "nobody", "password": "wrong-password"}).status_code for _ in range(5)
    ]
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]


def test_key_creation_is_rate_limited(tenant, make_key, key_client, settings):
    settings.API_KEY_CREATE_RATE = "2/h"  # hour windows: no roll-over mid-test
    _, raw_key = make_key(tenant, ["keys:manage"])
    client = key_client(raw_key)
    codes = [
        client.post("/api/v1/keys/", {"name": "n", "scopes": ["keys:manage"]}, format="json").status_code
        for _ in range(3)
    ]
    assert codes == [201, 201, 429]


def test_refusals_pass_the_whole_chain_and_unknown_paths_still_need_a_valid_key(tenant, make_key, key_client):
    """The decision is applied before the view (process_view) or, when no view is reached, on the way
    out: an invalid key gets 401 on an unknown path too, and refusals carry the API's no-store header."""
    _, raw_key = make_key(tenant, ["websites:read"])
    response = key_client("plk_test_" + "A" * 50).get("/api/v1/websites/")
    error_of(response, 401, "invalid_api_key")
    assert response["Cache-Control"] == "no-store"
    error_of(key_client("plk_test_" + "A" * 50).get("/api/v1/no-such-endpoint/"), 401, "invalid_api_key")
    response = key_client(raw_key).get("/api/v1/no-such-endpoint/")
    assert response.status_code == 404 and response["RateLimit-Policy"].startswith(
        '"minute";q=1000;w=60, "month";q=5000000;w='
    )


def test_per_ip_limits_use_the_client_behind_trusted_proxies(tenant, key_client, settings):
    """Reproduction: behind an ingress every client shared the ingress's budget of failed authentications."""
    settings.API_KEY_AUTH_FAILURE_RATE = "3/h"  # hour windows: no roll-over mid-test
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    bad = key_client("plk_test_" + "C" * 50)

    def status(client_address, spoofed=""):
        forwarded = f"{spoofed}, {client_address}" if spoofed else client_address
        return bad.get("/api/v1/websites/", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR=forwarded).status_code

    assert [status("198.51.100.1") for _ in range(4)] == [401, 401, 401, 429]
    # Another client behind the same ingress has a budget of its own...
    assert status("198.51.100.2") == 401
    # ...and the first cannot escape its own by writing another address on the left.
    assert status("198.51.100.1", spoofed="203.0.113.50") == 429


def test_a_valid_key_gets_in_after_30_failures_from_its_address(tenant, make_key, key_client, settings):
    """Reproduction: after 30 failed authentications from an address, a valid (not yet cached) key from it got 429."""
    settings.API_KEY_AUTH_FAILURE_RATE = "30/h"  # the default's count in an hour window: no roll-over mid-test
    bad = key_client("plk_test_" + "D" * 50)
    assert {bad.get("/api/v1/websites/").status_code for _ in range(30)} == {401}
    error_of(bad.get("/api/v1/websites/"), 429, "rate_limited")  # the failures are limited
    _, raw_key = make_key(tenant, ["websites:read"])  # never used: no record cached yet
    assert key_client(raw_key).get("/api/v1/websites/").status_code == 200
    error_of(bad.get("/api/v1/websites/"), 429, "rate_limited")  # and the guessing stays limited
