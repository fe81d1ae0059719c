"""Redis stopped mid-test: the chosen failure mode, never a 500, then recovery when it returns."""

import pytest
from prometheus_client import REGISTRY

from tests.apikeys.conftest import error_of
from tests.helpers import stack, wait_for

pytestmark = pytest.mark.django_db


def _stack(action):
    stack(action, "redis")


def _errors(mode):
    return REGISTRY.get_sample_value("platform_api_gateway_backend_errors_total", {"mode": mode}) or 0


@pytest.fixture
def redis_stopped():
    _stack("stop")
    try:
        yield
    finally:
        _stack("start")


def test_fail_open_then_closed_then_recovery(
    tenant, make_key, key_client, settings, caplog, django_capture_on_commit_callbacks
):
    from apikeys import services

    _, raw_key = make_key(tenant, ["websites:read"])
    revoked, raw_revoked = make_key(tenant, ["websites:read"])
    with django_capture_on_commit_callbacks(execute=True):
        services.apikey_revoke(api_key=revoked, revoked_by="test", reason="gone")
    client = key_client(raw_key)
    assert client.get("/api/v1/websites/").status_code == 200
    settings.API_GATEWAY_OUTAGE_LOG_INTERVAL = 3600
    _stack("stop")
    try:
        # Fail open (the default): keys are checked against the database, no limit applied.
        before = _errors("open")
        for _ in range(3):
            response = client.get("/api/v1/websites/")
            assert response.status_code == 200, response.content
            assert "RateLimit" not in response and response["X-RateLimit-Limit"] == "1000"
        error_of(key_client(raw_revoked).get("/api/v1/websites/"), 401, "revoked_api_key")
        assert _errors("open") - before >= 4
        outage_lines = [r for r in caplog.records if "gateway store unavailable" in r.getMessage()]
        assert len(outage_lines) <= 1  # at most once per interval (may have been logged by an earlier test)

        # Fail closed: 503 in the error shape, never a 500.
        settings.API_GATEWAY_FAIL_MODE = "closed"
        response = client.get("/api/v1/websites/")
        error_of(response, 503, "gateway_unavailable")
        assert response["Retry-After"] == "1"
    finally:
        _stack("start")

    # Recovery: the next requests use Redis again (the restarted Redis is empty: caches refill).
    settings.API_GATEWAY_FAIL_MODE = "open"
    wait_for(lambda: "RateLimit" in client.get("/api/v1/websites/"), timeout=15, interval=0.2)
    response = client.get("/api/v1/websites/")
    assert response.status_code == 200 and response["RateLimit-Policy"].startswith(
        '"minute";q=1000;w=60, "month";q=5000000;w='
    )
    error_of(key_client(raw_revoked).get("/api/v1/websites/"), 401, "revoked_api_key")


def test_outage_is_logged_once_per_interval_and_malformed_keys_still_401(
    tenant, make_key, key_client, settings, caplog, redis_stopped
):
    import apikeys.middleware as middleware

    _, raw_key = make_key(tenant, ["websites:read"])  # nothing is cached: Redis is down
    middleware._outage_logged_at = None
    settings.API_GATEWAY_OUTAGE_LOG_INTERVAL = 3600
    for _ in range(3):
        assert key_client(raw_key).get("/api/v1/websites/").status_code == 200
    error_of(key_client("plk_test_" + "C" * 50).get("/api/v1/websites/"), 401, "invalid_api_key")
    lines = [r.getMessage() for r in caplog.records if "gateway store unavailable" in r.getMessage()]
    assert lines == ["API gateway store unavailable (gateway script); failing open"]


def test_a_redis_restart_between_requests_costs_no_request(tenant, make_key, key_client):
    """Each thread's gateway connection outlives a Redis restart: its next request reconnects and is
    decided by Redis (limit headers, no outage counted), not served in the failure mode."""
    _, raw_key = make_key(tenant, ["websites:read"])
    client = key_client(raw_key)
    assert "RateLimit" in client.get("/api/v1/websites/")
    _stack("stop")
    _stack("start")  # returns once Redis answers; the restarted Redis is empty (no scripts, no records)
    before = _errors("open") + _errors("closed")
    response = client.get("/api/v1/websites/")
    assert response.status_code == 200 and response["RateLimit"].startswith('"minute";r=999;')
    assert _errors("open") + _errors("closed") == before
