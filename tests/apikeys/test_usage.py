from datetime import timedelta

import pytest
from django.utils import timezone

from apikeys import services
from apikeys.gateway import outcomes
from apikeys.models import ApiKey, ApiUsageMinute
from platform_site.celery import app
from tests.apikeys.conftest import error_of

pytestmark = pytest.mark.django_db


def test_usage_counted_in_redis_rolled_up_and_served(tenant, other_tenant, make_key, key_client):
    api_key, raw_key = make_key(tenant, ["websites:read", "usage:read"], rate_limit_per_minute=4)
    client = key_client(raw_key)
    assert client.get("/api/v1/websites/").status_code == 200
    assert client.get("/api/v1/websites/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert client.get("/api/v1/usage/").status_code == 200
    assert client.get("/api/v1/websites/").status_code == 200
    assert client.get("/api/v1/websites/").status_code == 429
    outcomes.flush_pending_outcomes()  # what the process does within IDLE_FLUSH_SECONDS

    result = services.usage_rollup()
    assert result["usage_rows"] >= 1 and result["keys_last_used"] >= 1
    assert services.usage_rollup()["usage_rows"] == result["usage_rows"]  # idempotent: same absolute values
    row = ApiUsageMinute.objects.get(api_key=api_key)
    assert (row.requests, row.rate_limited, row.client_errors, row.tenant_id) == (5, 1, 1, tenant.pk)
    assert row.latency_ms_max >= 0 and row.latency_ms_sum >= row.latency_ms_max
    api_key.refresh_from_db()
    assert api_key.last_used_at and timezone.now() - api_key.last_used_at < timedelta(minutes=5)

    _, other_raw = make_key(other_tenant, ["usage:read"])
    body = key_client(other_raw).get("/api/v1/usage/?minutes=60").json()
    assert body["tenant"] == str(other_tenant.pk) and body["totals"]["requests"] == 0  # own tenant only

    _, reader = make_key(tenant, ["usage:read"])
    body = key_client(reader).get("/api/v1/usage/?minutes=60").json()
    assert body["tenant"] == str(tenant.pk) and body["totals"]["requests"] == 5
    assert body["totals"]["rate_limited"] == 1 and body["totals"]["client_errors"] == 1
    assert [item["name"] for item in body["keys"]] == ["ci"] and len(body["series"]) >= 1
    error = error_of(key_client(reader).get("/api/v1/usage/?minutes=0"), 400, "invalid")
    assert "minutes" in error["fields"]


def test_operator_reads_any_tenants_usage(tenant, staff_client):
    error_of(staff_client.get("/api/v1/usage/"), 400, "invalid")
    assert staff_client.get(f"/api/v1/usage/?tenant={tenant.pk}").json()["tenant"] == str(tenant.pk)


def test_rollup_runs_every_minute_from_beat():
    entry = app.conf.beat_schedule["apikeys-usage-rollup"]
    assert entry["task"] == "apikeys.tasks.usage_rollup" and entry["schedule"] == 60.0


@pytest.mark.django_db(transaction=True)
def test_rollup_task_on_a_real_worker(celery_worker, tenant, key_client):
    from apikeys.tasks import usage_rollup
    from tests.helpers import wait_for

    api_key, raw_key = services.apikey_create(tenant=tenant, name="w", scopes=["websites:read"])
    assert key_client(raw_key).get("/api/v1/websites/").status_code == 200
    usage_rollup.delay()
    wait_for(lambda: ApiUsageMinute.objects.filter(api_key=api_key, requests=1).exists(), timeout=30)
    wait_for(lambda: ApiKey.objects.get(pk=api_key.pk).last_used_at is not None, timeout=30)
