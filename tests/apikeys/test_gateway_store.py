import time

import pytest

from apikeys.gateway import base
from apikeys.gateway.memory_store import MemoryGatewayStore
from apikeys.keyformat import parse_key
from tests.apikeys.concurrency import hammer, spawn
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db

ATTEMPTS_PER_CLIENT = 3


def _warm(raw_key) -> tuple[str, str]:
    """First use through the real gateway fills the key record and tenant state in Redis."""
    from apikeys.gateway.decision import decide

    parsed = parse_key(raw_key)
    decision = decide(parsed)
    assert decision.code == base.OK
    base.gateway_store().reset_limit(parsed.lookup_id, decision.tenant_id)
    return parsed.lookup_id, parsed.secret_hash


def test_64_concurrent_clients_threads_and_processes_get_exactly_the_free_limit(other_tenant, make_key):
    _, raw_key = make_key(other_tenant, ["websites:read"])  # tier free: 100 a minute
    lookup_id, secret_hash = _warm(raw_key)
    key = (lookup_id, secret_hash)
    spawned = [spawn(hammer, key, 8, ATTEMPTS_PER_CLIENT) for _ in range(4)]
    processes = [process for process, _ in spawned]
    # 32 threads here and 4 processes x 8 threads: 64 clients, 192 attempts for 100 places.
    in_process = hammer(base.gateway_store(), key, 32, ATTEMPTS_PER_CLIENT)
    from_processes = [results.get(timeout=60) for _, results in spawned]
    for process in processes:
        process.join(timeout=30)
    assert len(from_processes) == 4 and all(process.exitcode == 0 for process in processes)
    assert in_process + sum(from_processes) == 100


def test_no_double_burst_across_a_window_edge(tenant, make_key):
    """A full quota used 59 s ago still counts now; a fixed window would admit a second burst here."""
    _, raw_key = make_key(tenant, ["websites:read"], rate_limit_per_minute=5)
    lookup_id, secret_hash = _warm(raw_key)
    client = base.gateway_store().client
    server_now = int(client.time()[0])
    # Five admissions 59 s ago, as the script records them: a bucket, the running total, the oldest.
    client.hset(base.KEY_MINUTE_WINDOW_PREFIX + lookup_id, mapping={server_now - 59: 5, "n": 5, "o": server_now - 59})
    store = base.gateway_store()
    refused = store.evaluate(lookup_id=lookup_id, secret_hash=secret_hash, outcomes=[])
    assert refused.code == base.RATE_LIMITED and refused.remaining == 0
    assert 1 <= refused.reset_seconds <= 3
    # Once those requests are more than 60 s old, the quota is back, all of it.
    wait_for(
        lambda: store.evaluate(lookup_id=lookup_id, secret_hash=secret_hash, outcomes=[]).code == base.OK,
        timeout=10,
        interval=0.25,
    )
    admitted = [store.evaluate(lookup_id=lookup_id, secret_hash=secret_hash, outcomes=[]).code for _ in range(5)]
    assert admitted.count(base.OK) == 4 and admitted[-1] == base.RATE_LIMITED


def test_limiter_memory_is_bounded_whatever_the_limit(tenant, make_key, django_capture_on_commit_callbacks):
    from tenants import services as tenant_services

    with django_capture_on_commit_callbacks(execute=True):
        tenant_services.tenant_limit_override(tenant=tenant, requests_per_minute=100_000)
    _, raw_key = make_key(tenant, ["websites:read"], rate_limit_per_minute=50_000)
    lookup_id, secret_hash = _warm(raw_key)
    store = base.gateway_store()
    for _ in range(300):
        store.evaluate(lookup_id=lookup_id, secret_hash=secret_hash, outcomes=[])
    for window in (base.KEY_MINUTE_WINDOW_PREFIX + lookup_id, base.TENANT_MINUTE_WINDOW_PREFIX + str(tenant.pk)):
        assert store.client.hlen(window) <= 61 + 2  # buckets, total, oldest
        assert 0 < store.client.pttl(window) <= 62_000


def test_memory_store_same_decisions_for_embedded_mode():
    from apikeys.keyformat import generate_key

    store = MemoryGatewayStore()
    raw_key, parsed = generate_key("test")
    record = {"h": parsed.secret_hash, "id": "k1", "t": "t1", "sc": "websites:read", "exp": "0", "lim": "", "rev": "0"}
    assert store.evaluate(lookup_id=parsed.lookup_id, secret_hash=parsed.secret_hash, outcomes=[]).code == base.MISS
    store.fill_record(parsed.lookup_id, record)
    decision = store.evaluate(lookup_id=parsed.lookup_id, secret_hash=parsed.secret_hash, outcomes=[])
    assert decision.code == base.TENANT_MISS
    plan = {"tier": "free", "burst": None, "minute": 100, "quota": None, "month": "", "month_units": 0}
    store.fill_tenant("t1", base.tenant_fields(status="active", **plan))
    assert hammer(store, (parsed.lookup_id, parsed.secret_hash), 64, ATTEMPTS_PER_CLIENT) == 100
    assert store.evaluate(lookup_id=parsed.lookup_id, secret_hash="0" * 64, outcomes=[]).code == base.INVALID
    store.fill_record(parsed.lookup_id, {**record, "rev": "1"})  # a fill never overwrites
    assert store.evaluate(lookup_id=parsed.lookup_id, secret_hash=parsed.secret_hash, outcomes=[]).code != base.REVOKED
    store.put_record(parsed.lookup_id, {**record, "rev": "1"})
    assert store.evaluate(lookup_id=parsed.lookup_id, secret_hash=parsed.secret_hash, outcomes=[]).code == base.REVOKED
    store.put_record(parsed.lookup_id, {**record, "exp": str(int(time.time() * 1000) - 1)})
    assert store.evaluate(lookup_id=parsed.lookup_id, secret_hash=parsed.secret_hash, outcomes=[]).code == base.EXPIRED
    store.put_record(parsed.lookup_id, record)
    store.put_tenant("t1", base.tenant_fields(status="suspended", **plan))
    assert (
        store.evaluate(lookup_id=parsed.lookup_id, secret_hash=parsed.secret_hash, outcomes=[]).code == base.SUSPENDED
    )
    assert store.usage_read(int(time.time()) // 60 * 60)["k1"]["l"] == 64 * 3 - 100 + 1  # and the one above
