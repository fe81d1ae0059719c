"""Usage plans: burst, per-minute and monthly quota decided in one script call, weighted operations, the
RateLimit headers (parsed as RFC 8941 structured fields), quota alerts, and a monthly count that survives a
Redis restart. Through the real gateway, Redis and PostgreSQL."""

import time

import http_sf
import pytest

from apikeys import services
from apikeys.gateway import base
from apikeys.gateway.memory_store import MemoryGatewayStore
from apikeys.keyformat import generate_key, parse_key
from apikeys.models import TenantUsageMonth
from tenants import plans
from tenants import services as tenant_services
from tests.apikeys.concurrency import hammer, two_processes
from tests.apikeys.conftest import error_of
from tests.helpers import stack
from webhooks.models import Event

pytestmark = pytest.mark.django_db

V1 = "/api/v1"


@pytest.fixture
def planned(db, django_capture_on_commit_callbacks):
    """A Free tenant with a plan of its own: burst, minute and quota as asked (operator overrides)."""

    def make(*, burst=None, minute=None, quota=None, slug="planned"):
        tenant = tenant_services.tenant_create(name=slug.title(), slug=slug, tier="free")
        with django_capture_on_commit_callbacks(execute=True):
            if minute is not None:
                tenant_services.tenant_limit_override(tenant=tenant, requests_per_minute=minute)
            tenant = plans.tenant_plan_override(tenant=tenant, burst_per_second=burst, monthly_quota=quota)
        return tenant

    return make


def _policies(response) -> dict:
    """RateLimit-Policy parsed as an RFC 8941 list: {name: (q, w)}."""
    parsed = http_sf.parse(response["RateLimit-Policy"].encode(), tltype="list")
    return {name: (params["q"], params["w"]) for name, params in parsed}


def _ratelimit(response) -> tuple[str, int, int]:
    [(name, params)] = http_sf.parse(response["RateLimit"].encode(), tltype="list")
    return name, params["r"], params["t"]


def _month_counter(tenant) -> int:
    return base.gateway_store().month_units([str(tenant.pk)], base.current_month().id).get(str(tenant.pk), 0)


def test_headers_list_every_window_and_report_the_closest(planned, make_key, key_client):
    tenant = planned(burst=50, minute=100, quota=120)
    client = key_client(make_key(tenant, ["websites:read"])[1])
    response = client.get(f"{V1}/websites/")
    assert response.status_code == 200
    month_seconds = base.current_month().seconds
    assert _policies(response) == {"burst": (50, 1), "minute": (100, 60), "month": (120, month_seconds)}
    assert _ratelimit(response)[:2] == ("burst", 49)  # 49 of 50 left this second, 99 a minute, 119 a month
    assert list(_policies(response)) == ["burst", "minute", "month"]


def test_a_plan_without_quota_still_counts_the_month(make_key, key_client):
    """Usage, and a quota set later, start from the true figure."""
    tenant = tenant_services.tenant_create(name="Big", slug="big", tier="enterprise")  # no quota by default
    client = key_client(make_key(tenant, ["websites:read"])[1])
    responses = [client.get(f"{V1}/websites/") for _ in range(3)]
    assert [response.status_code for response in responses] == [200] * 3
    assert "month" not in _policies(responses[-1]) and _month_counter(tenant) == 3


def test_the_monthly_quota_refuses_and_names_itself(planned, make_key, key_client):
    tenant = planned(minute=100, quota=5)
    client = key_client(make_key(tenant, ["websites:read"])[1])
    statuses = [client.get(f"{V1}/websites/").status_code for _ in range(5)]
    assert statuses == [200] * 5
    refused = client.get(f"{V1}/websites/")
    error = error_of(refused, 429, "rate_limited")
    assert error["fields"] == {"policy": ["month"]} and '"month"' in error["message"]
    name, remaining, reset = _ratelimit(refused)
    month_left = base.current_month().end - time.time()
    assert (name, remaining) == ("month", 0) and abs(int(refused["Retry-After"]) - month_left) <= 2
    assert reset == int(refused["Retry-After"])
    assert _month_counter(tenant) == 5  # a refused request is counted in no window


def test_the_burst_refuses_with_a_one_second_retry(planned, make_key, key_client):
    tenant = planned(burst=3, minute=100)
    client = key_client(make_key(tenant, ["websites:read"])[1])
    for _ in range(3):  # a fresh second: a refusal before 3 would be a slot boundary, retried below
        while time.time() % 1 > 0.5:
            time.sleep(0.05)
        base.gateway_store().reset_limit("", str(tenant.pk))
        started = int(time.time())
        statuses = [client.get(f"{V1}/websites/").status_code for _ in range(4)]
        refused = client.get(f"{V1}/websites/")
        if int(time.time()) == started:
            break
    assert statuses == [200, 200, 200, 429]
    assert refused.json()["error"]["fields"] == {"policy": ["burst"]} and refused["Retry-After"] == "1"
    assert _ratelimit(refused) == ("burst", 0, 1)


def test_weighted_operations_count_their_cost_in_every_window(
    make_key, key_client, website, django_capture_on_commit_callbacks
):
    from django.test import RequestFactory

    from apikeys.middleware import operation_cost

    factory = RequestFactory()
    assert operation_cost(factory.post(f"{V1}/websites/{website.pk}/invalidations/")) == 10
    assert operation_cost(factory.get(f"{V1}/websites/{website.pk}/invalidations/")) == 1
    assert operation_cost(factory.post(f"{V1}/websites/{website.pk}/deployments/")) == 10
    assert operation_cost(factory.get(f"{V1}/websites/{website.pk}/deployments/")) == 1
    tenant = website.tenant
    with django_capture_on_commit_callbacks(execute=True):
        plans.tenant_plan_override(tenant=tenant, monthly_quota=25)
    client = key_client(make_key(tenant, ["websites:read", "cdn:invalidate"])[1])
    purge = client.post(f"{V1}/websites/{website.pk}/invalidations/", {"paths": ["/index.html"]}, format="json")
    assert purge.status_code == 202, purge.content
    assert _month_counter(tenant) == 10
    read = client.get(f"{V1}/websites/")
    assert _ratelimit(read)[:2] == ("month", 14)
    minute_window = base.gateway_store().client.hget(base.TENANT_MINUTE_WINDOW_PREFIX + str(tenant.pk), "n")
    assert int(minute_window) == 11  # the tenant's minute window counted the purge's 10 too
    second = client.post(f"{V1}/websites/{website.pk}/invalidations/", {"paths": ["/a.html"]}, format="json")
    assert second.status_code == 202
    refused = client.post(f"{V1}/websites/{website.pk}/invalidations/", {"paths": ["/b.html"]}, format="json")
    error_of(refused, 429, "rate_limited")  # 4 units left: a cost of 10 does not fit
    assert _ratelimit(refused)[:2] == ("month", 4) and client.get(f"{V1}/websites/").status_code == 200
    assert _month_counter(tenant) == 22


def _warm(raw_key):
    from apikeys.gateway.decision import decide

    parsed = parse_key(raw_key)
    assert decide(parsed).code == base.OK  # fills the records; counts 1
    return parsed.lookup_id, parsed.secret_hash


def test_minute_and_quota_exact_under_64_clients_in_2_processes(planned, make_key):
    tenant = planned(minute=100, quota=60)
    key = _warm(make_key(tenant, ["websites:read"])[1])
    assert two_processes(key, 32, 3) == 59  # 192 attempts, 59 places left of the quota
    assert _month_counter(tenant) == 60
    other = planned(minute=40, quota=1_000, slug="minute-bound")
    key = _warm(make_key(other, ["websites:read"], name="m")[1])
    assert two_processes(key, 32, 3) == 39  # the minute window bites first
    assert _month_counter(other) == 40


def test_memory_store_applies_the_plan_exactly_under_threads():
    """Embedded mode: the same windows and the same seeding, thread-safe under one lock."""
    store = MemoryGatewayStore()
    raw, parsed = generate_key("test")
    store.put_record(parsed.lookup_id, {"h": parsed.secret_hash, "id": "k1", "t": "t1", "sc": "websites:read",
                                        "exp": "0", "lim": "", "rev": "0"})  # fmt: skip
    month = base.current_month()
    fields = {"tier": "free", "burst": None, "minute": 1_000, "quota": 300, "month": month.id, "month_units": 250}
    store.put_tenant("t1", base.tenant_fields(status="active", **fields))
    key = (parsed.lookup_id, parsed.secret_hash)
    assert hammer(store, key, 64, 3) == 50  # seeded from the persisted 250: a fresh store is no fresh month
    refused = store.evaluate(lookup_id=key[0], secret_hash=key[1], outcomes=[])
    assert (refused.code, refused.policy, refused.remaining) == (base.RATE_LIMITED, base.MONTH_POLICY, 0)
    assert store.month_units(["t1"], month.id) == {"t1": 300}
    store.put_tenant("t2", base.tenant_fields(status="active", **{**fields, "burst": 5, "quota": None}))
    store.put_record("other", {"h": parsed.secret_hash, "id": "k2", "t": "t2", "sc": "", "exp": "0", "lim": "",
                               "rev": "0"})  # fmt: skip
    second = int(time.time())
    admitted = hammer(store, ("other", parsed.secret_hash), 16, 1)
    if int(time.time()) == second:  # all in one second (else two slots: at most 10)
        assert admitted == 5
    else:
        assert admitted <= 10
    heavy = store.evaluate(lookup_id="other", secret_hash=parsed.secret_hash, outcomes=[], cost=6)
    assert heavy.code == base.RATE_LIMITED and heavy.policy == base.BURST_POLICY
    assert store.month_units(["t2"], month.id) == {"t2": 250 + admitted}  # counted without a quota too


def test_monthly_usage_survives_a_redis_restart(planned, make_key, key_client):
    """The roll-up persists the month's units; Redis restarts empty; the counter is seeded from
    PostgreSQL, so the tenant gets what is left of its month, not a fresh one."""
    tenant = planned(minute=1_000, quota=30)
    client = key_client(make_key(tenant, ["websites:read"])[1])
    assert [client.get(f"{V1}/websites/").status_code for _ in range(20)] == [200] * 20
    services.usage_rollup()
    assert TenantUsageMonth.objects.get(tenant=tenant).units == 20
    stack("stop", "redis")
    stack("start", "redis")  # no persistence: every key, record and counter is gone
    assert _month_counter(tenant) == 0
    statuses = [client.get(f"{V1}/websites/").status_code for _ in range(15)]
    assert statuses == [200] * 10 + [429] * 5
    assert _month_counter(tenant) == 30


def test_quota_alerts_go_out_once_a_month_and_show_in_usage(planned, make_key, key_client):
    tenant = planned(minute=1_000, quota=10)
    client = key_client(make_key(tenant, ["websites:read", "usage:read"])[1])
    for _ in range(7):
        assert client.get(f"{V1}/websites/").status_code == 200
    services.usage_rollup()
    assert not Event.objects.filter(tenant=tenant, type__startswith="usage.quota").exists()  # 70 %
    assert client.get(f"{V1}/websites/").status_code == 200  # 8 of 10: 80 %
    services.usage_rollup()
    services.usage_rollup()
    warning = Event.objects.get(tenant=tenant, type="usage.quota.warning")  # once, however many roll-ups
    assert warning.data["usage"]["used"] == 8 and warning.data["usage"]["remaining"] == 2
    usage = client.get(f"{V1}/usage/").json()["quota"]  # as rolled up (this request, the 9th unit, is not yet)
    assert (usage["quota"], usage["used"], usage["remaining"]) == (10, 8, 2) and usage["warning_sent_at"]
    assert usage["exceeded_sent_at"] is None
    while client.get(f"{V1}/websites/").status_code == 200:
        pass
    services.usage_rollup()
    services.usage_rollup()
    exceeded = Event.objects.get(tenant=tenant, type="usage.quota.exceeded")
    assert exceeded.data["usage"]["remaining"] == 0
    row = TenantUsageMonth.objects.get(tenant=tenant)
    assert row.units == 10 and row.exceeded_sent_at is not None
    services.usage_rollup()
    assert Event.objects.filter(tenant=tenant, type__startswith="usage.quota").count() == 2


def _seed_minute_window(store, tenant_id: str, now: int, buckets: dict[int, int]) -> None:
    """The tenant's per-minute window holding `buckets` ({seconds ago: units}) as the store keeps it."""
    seconds = {now - ago: units for ago, units in buckets.items()}
    if isinstance(store, MemoryGatewayStore):
        store.buckets[base.TENANT_MINUTE_WINDOW_PREFIX + tenant_id] = dict(seconds)
        return
    key = base.TENANT_MINUTE_WINDOW_PREFIX + tenant_id
    fields = {**seconds, "n": sum(seconds.values()), "o": min(seconds)}
    store.client.pipeline().delete(key).hset(key, mapping=fields).expire(key, 62).execute()


@pytest.mark.parametrize("kind", ["redis", "memory"])
def test_retry_after_of_a_weighted_refusal_is_when_its_cost_fits(kind, planned, make_key):
    """A request of cost 10 refused with 2 units left waits until 8 units have left the window: here the
    second-oldest bucket, not the oldest (which frees only 5)."""
    if kind == "memory":
        store = MemoryGatewayStore()
        raw, parsed = generate_key("test")
        store.put_record(parsed.lookup_id, {"h": parsed.secret_hash, "id": "k1", "t": "t1", "sc": "", "exp": "0",
                                            "lim": "", "rev": "0"})  # fmt: skip
        month = base.current_month()
        store.put_tenant("t1", base.tenant_fields(status="active", tier="free", burst=None, minute=20, quota=None,
                                                  month=month.id, month_units=0))  # fmt: skip
        tenant_id, key, clock = "t1", (parsed.lookup_id, parsed.secret_hash), time.time
    else:
        store = base.gateway_store()
        tenant = planned(minute=20)
        tenant_id, key = str(tenant.pk), _warm(make_key(tenant, ["websites:read"])[1])
        clock = lambda: store.client.time()[0]  # noqa: E731 - the script's clock
    for _ in range(3):  # seeded and decided within one second (else seeded again)
        now = int(clock())
        _seed_minute_window(store, tenant_id, now, {30: 5, 20: 5, 10: 8})
        refused = store.evaluate(lookup_id=key[0], secret_hash=key[1], outcomes=[], cost=10)
        short_by_one = store.evaluate(lookup_id=key[0], secret_hash=key[1], outcomes=[], cost=3)
        if int(clock()) == now:
            break
    assert (refused.code, refused.policy, refused.remaining) == (base.RATE_LIMITED, base.MINUTE_POLICY, 2)
    # The bucket of 20 s ago leaves the window (the last WINDOW_SECONDS + 1 seconds) in 41 s.
    assert refused.reset_seconds == -20 + base.WINDOW_SECONDS + 1 == 41
    assert short_by_one.code == base.RATE_LIMITED and short_by_one.reset_seconds == 31  # the oldest frees 5
