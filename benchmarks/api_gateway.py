"""API gateway overhead against the peers, side by side in one run, on the local stack.

    PLATFORM_STACK_PORT_BASE=... deploy/local/stack up && eval "$(deploy/local/stack env)"
    python -m benchmarks.api_gateway [--requests 2000]

Variants of one view: (none) no auth, no limit; (gateway) ours, the tenant's window over all its keys and
the key's own; (drf_token) DRF TokenAuthentication + UserRateThrottle on django-redis; (drf_api_key)
djangorestframework-api-key + DRF throttle. Each at the Free (100/min) and Enterprise (50,000/min) tier
after 10,000 requests in the window, and (gateway_plan) ours with all three windows of a usage plan active
(burst, minute, monthly quota; `overhead_vs_ping_plan`). `tenant_limit_exact`: 4 keys of one Free tenant
under 64 threads get exactly 100 requests admitted in all. `plan_exact`: 64 clients in 2 processes on a
plan of burst 20/s, minute 100, quota 300 are admitted exactly what each window allows: 20 within one
second, 100 over 7 s (the minute bites), 50 when 250 of the month's 300 were used before (the quota bites,
its counter seeded from PostgreSQL). Overhead is the
median request time minus the median of (none). The variants are timed in turn, request by request,
in a shuffled order, each after the same untimed setup (both Free clients back at 99 of 100) and
followed by a timed bare PING, so drift on a shared machine and the setup's after-effects hit all
alike, and the PING is timed where the gateway's own call happens: after Django's request work.

Our gateway sends its one script call as the request arrives and reads the reply just before the view,
so the round trip overlaps Django's own request work: its overhead can be below one PING (the time a
request waits for Redis is what is left of the round trip after that work). The last line is one JSON
object.
"""

import argparse
import json
import os
import random
import statistics
import threading
import time
import uuid

os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"

import django  # noqa: E402

django.setup()

from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django_redis import get_redis_connection  # noqa: E402

from apikeys import services  # noqa: E402
from apikeys.gateway import base  # noqa: E402
from benchmarks.probes import RedisRoundTrips  # noqa: E402
from tenants import services as tenant_services  # noqa: E402
from tests.apikeys.concurrency import across_two_processes  # noqa: E402

WINDOW_FILL = 10_000


def _median_ns(samples):
    return statistics.median(samples)


def _time_interleaved(client, variants, count, setup):
    """Median-ready timings of every variant, taken in turn in a shuffled order (so drift on a shared
    machine, and what ran just before, hit all alike), each request preceded by the same untimed setup
    and followed by a timed bare PING."""
    from django_redis import get_redis_connection

    redis = get_redis_connection("default")
    samples = {name: [] for name in variants}
    pings = []
    order = list(variants)
    shuffle = random.Random(0).shuffle  # each round in a new order: no variant always follows the same one
    for _ in range(count):
        shuffle(order)
        for name in order:
            path, headers = variants[name]
            setup()
            started = time.perf_counter_ns()
            response = client.get(path, **headers)
            samples[name].append(time.perf_counter_ns() - started)
            assert response.status_code == 200, (name, response.status_code, response.content[:300])
            # The PING right after a request: where the gateway's own call happens, after Django's work
            # (not right after the setup's round trips, which leave the path to Redis warm).
            started = time.perf_counter_ns()
            redis.ping()
            pings.append(time.perf_counter_ns() - started)
    return samples, pings


def _wait_for_replicas():
    """Until every replica has replayed the setup's writes (the benchmark's client has no write position)."""
    from dbrouting.monitor import replicas_wait_for
    from dbrouting.routing import primary_lsn

    try:
        replicas_wait_for(primary_lsn(), timeout=30)
    except TimeoutError as exc:
        raise SystemExit(f"benchmark: {exc}") from None


def _drf_history(scope, ident, entries):
    now = time.time()
    # Newest first, spread over the last 50 s, as DRF's throttle keeps them.
    cache.set(f"throttle_{scope}_{ident}", [now - index * 50 / entries for index in range(entries)], 120)


def _fill_gateway(tenant_id, used):
    """The tenant's window (over all its keys; the benchmark's keys have no lower limit of their own)."""
    redis = get_redis_connection("default")
    now = int(redis.time()[0])
    key = base.TENANT_MINUTE_WINDOW_PREFIX + str(tenant_id)
    per_second = {now - 50 + index: used // 50 for index in range(50)}
    per_second[now] = used - sum(per_second.values())
    buckets = {second: count for second, count in per_second.items() if count}
    with redis.pipeline() as pipe:  # one untimed round trip
        pipe.delete(key).hset(key, mapping={**buckets, "n": used, "o": min(buckets)}).expire(key, 62).execute()


def _concurrency(path, headers, threads, attempts):
    """Requests admitted to `threads` clients starting together; `headers` a dict, or a list of dicts the
    threads take in turn (several keys)."""
    admitted = []
    barrier = threading.Barrier(threads)
    choices = headers if isinstance(headers, list) else [headers]

    def client_thread(index):
        client = Client()
        barrier.wait()
        ok = sum(client.get(path, **choices[index % len(choices)]).status_code == 200 for _ in range(attempts))
        admitted.append(ok)
        connections.close_all()

    workers = [threading.Thread(target=client_thread, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(admitted)


def _planned_tenant(run, name, *, burst, minute, quota, used_this_month=0):
    """A tenant with a plan of its own (operator overrides) and a key whose records are in Redis, so the
    store's first call already decides (nothing counted by a warm-up)."""
    from apikeys.gateway import base
    from apikeys.gateway.decision import gateway_tenant_fields
    from apikeys.keyformat import parse_key
    from apikeys.models import TenantUsageMonth
    from tenants import plans

    tenant = tenant_services.tenant_create(name=f"bench {name} {run}", slug=f"bench-{name}-{run}", tier="free")
    tenant_services.tenant_limit_override(tenant=tenant, requests_per_minute=minute)
    tenant = plans.tenant_plan_override(tenant=tenant, burst_per_second=burst, monthly_quota=quota)
    if used_this_month:
        TenantUsageMonth.objects.create(tenant=tenant, month=base.current_month().first_day, units=used_this_month)
    api_key, raw_key = services.apikey_create(tenant=tenant, name="bench-plan", scopes=["usage:read"])
    store = base.gateway_store()
    store.put_tenant(str(tenant.pk), gateway_tenant_fields(tenant))
    store.put_record(api_key.lookup_id, base.record_fields(api_key))
    parsed = parse_key(raw_key)
    return raw_key, (parsed.lookup_id, parsed.secret_hash)


def _plan_exact(run, threads) -> dict:
    """Admissions of 64 clients in 2 processes under burst 20/s, minute 100, quota 300, window by window."""
    from apikeys.gateway import base

    store = base.gateway_store()
    plan = {"burst": 20, "minute": 100, "quota": 300}
    # The burst: clients asking in the first quarter of a fresh second; repeated when a loaded machine
    # answered the last of them in the next second (then it is no one-second measurement).
    burst_admitted = None
    for attempt in range(5):
        _, key = _planned_tenant(run, f"burst{attempt}", **plan)
        start_at = int(time.time()) + 3.01  # the spawned process is up by then
        admitted, last_reply = across_two_processes(store, key, threads, start_at, start_at + 0.25)
        if last_reply < int(start_at) + 1:
            burst_admitted = admitted
            break
    _, key = _planned_tenant(run, "minute", **plan)
    start_at = time.time() + 2
    minute_admitted, _ = across_two_processes(store, key, threads, start_at, start_at + 7)
    _, key = _planned_tenant(run, "quota", **plan, used_this_month=250)
    start_at = time.time() + 2
    quota_admitted, _ = across_two_processes(store, key, threads, start_at, start_at + 4)
    return {
        "plan_burst_admitted": burst_admitted,
        "plan_minute_admitted": minute_admitted,
        "plan_quota_admitted": quota_admitted,
        "plan_exact": (burst_admitted, minute_admitted, quota_admitted) == (20, 100, 50),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--attempts", type=int, default=40, help="requests per thread in the concurrency test")
    args = parser.parse_args()
    n = args.requests

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token
    from rest_framework_api_key.models import APIKey

    run = uuid.uuid4().hex[:8]
    free = tenant_services.tenant_create(name=f"bench free {run}", slug=f"bench-free-{run}", tier="free")
    enterprise = tenant_services.tenant_create(name=f"bench ent {run}", slug=f"bench-ent-{run}", tier="enterprise")
    _, key_free = services.apikey_create(tenant=free, name="bench", scopes=["usage:read"])
    _, key_ent = services.apikey_create(tenant=enterprise, name="bench", scopes=["usage:read"])
    # Concurrency runs on Free tenants of their own: the timed runs keep `free`'s window near full.
    free_conc = tenant_services.tenant_create(name=f"bench conc {run}", slug=f"bench-conc-{run}", tier="free")
    _, key_conc = services.apikey_create(tenant=free_conc, name="bench-concurrency", scopes=["usage:read"])
    free_four = tenant_services.tenant_create(name=f"bench four {run}", slug=f"bench-four-{run}", tier="free")
    keys_four = [
        services.apikey_create(tenant=free_four, name=f"bench-{index}", scopes=["usage:read"])[1] for index in range(4)
    ]
    users = get_user_model().objects
    user_free = users.create_user(username=f"bench-free-{run}")
    user_ent = users.create_user(username=f"bench-ent-{run}")
    user_conc = users.create_user(username=f"bench-conc-{run}")
    token_free, token_ent, token_conc = (Token.objects.create(user=u).key for u in (user_free, user_ent, user_conc))
    _, their_key = APIKey.objects.create_key(name=f"bench-{run}")

    # Every window of a plan active, none ever refusing here: the cost of deciding them all.
    key_plan, _ = _planned_tenant(run, "plan", burst=10**6, minute=10**7, quota=10**12)

    _wait_for_replicas()  # the peers read their tokens through the router: from a replica
    client = Client()
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {key_free}"}
    bearer_plan = {"HTTP_AUTHORIZATION": f"Bearer {key_plan}"}
    bearer_ent = {"HTTP_AUTHORIZATION": f"Bearer {key_ent}"}
    # Warm every path once (connections, caches, the script's SHA).
    for path, headers in [
        ("/api/v1/bench/none/", {}),
        ("/api/v1/bench/gateway/", bearer),
        ("/api/v1/bench/gateway/", bearer_ent),
        ("/api/v1/bench/gateway/", bearer_plan),
        ("/api/v1/bench/drf-token-enterprise/", {"HTTP_AUTHORIZATION": f"Token {token_ent}"}),
        ("/api/v1/bench/drf-api-key/", {"HTTP_AUTHORIZATION": f"Api-Key {their_key}"}),
    ]:
        response = client.get(path, **headers)
        assert response.status_code == 200, (path, response.status_code, response.content[:300])

    # After 10,000 requests in the window. Free admits only 100 a minute, so each Free request starts
    # from 99 used (DRF's list then holds 99 entries; ours one hash of <= 61 buckets).
    _fill_gateway(enterprise.pk, WINDOW_FILL)
    _drf_history("bench_enterprise", user_ent.pk, WINDOW_FILL)
    _drf_history("bench_apikey", "127.0.0.1", WINDOW_FILL)

    # Counted in a pass of its own, so the probes' cost is not in the timings.
    with CaptureQueriesContext(connection) as queries, RedisRoundTrips() as trips:
        for _ in range(n):
            assert client.get("/api/v1/bench/gateway/", **bearer_ent).status_code == 200
    gateway_queries, gateway_trips = len(queries) / n, trips.count / n
    with CaptureQueriesContext(connection) as queries, RedisRoundTrips() as trips:
        for _ in range(n):
            assert client.get("/api/v1/bench/gateway/", **bearer_plan).status_code == 200
    gateway_queries, gateway_trips = max(gateway_queries, len(queries) / n), max(gateway_trips, trips.count / n)

    variants = {
        "none": ("/api/v1/bench/none/", {}),
        "gateway_enterprise": ("/api/v1/bench/gateway/", bearer_ent),
        "gateway_free": ("/api/v1/bench/gateway/", bearer),
        "gateway_plan": ("/api/v1/bench/gateway/", bearer_plan),
        "drf_token_enterprise": ("/api/v1/bench/drf-token-enterprise/", {"HTTP_AUTHORIZATION": f"Token {token_ent}"}),
        "drf_token_free": ("/api/v1/bench/drf-token-free/", {"HTTP_AUTHORIZATION": f"Token {token_free}"}),
        "drf_api_key": ("/api/v1/bench/drf-api-key/", {"HTTP_AUTHORIZATION": f"Api-Key {their_key}"}),
    }

    def setup():
        # Both Free clients back at 99 of 100 before every request of every variant: the refill's
        # after-effects (measured: ~40 us on the next request) then weigh on all variants alike.
        _fill_gateway(free.pk, 99)
        _drf_history("bench_free", user_free.pk, 99)

    results, pings = _time_interleaved(client, variants, n, setup)

    medians = {name: _median_ns(samples) for name, samples in results.items()}
    overhead = {name: max(medians[name] - medians["none"], 1) for name in medians if name != "none"}
    ping_ns = _median_ns(pings)

    # Concurrency: 64 threads on a fresh 100/min client, ours against DRF's throttle.
    gateway_admitted = _concurrency(
        "/api/v1/bench/gateway/", {"HTTP_AUTHORIZATION": f"Bearer {key_conc}"}, args.threads, args.attempts
    )
    # The tier's limit is the tenant's: 4 keys of one Free tenant get 100 in all, not 100 each.
    tenant_admitted = _concurrency(
        "/api/v1/bench/gateway/", [{"HTTP_AUTHORIZATION": f"Bearer {key}"} for key in keys_four], args.threads,
        args.attempts,
    )  # fmt: skip
    cache.delete(f"throttle_bench_free_{user_conc.pk}")
    drf_admitted = _concurrency(
        "/api/v1/bench/drf-token-free/", {"HTTP_AUTHORIZATION": f"Token {token_conc}"}, args.threads, args.attempts
    )

    summary = {
        "requests_per_variant": n,
        "ping_us": round(ping_ns / 1000, 1),
        "median_us": {name: round(value / 1000, 1) for name, value in medians.items()},
        "overhead_us": {name: round(value / 1000, 1) for name, value in overhead.items()},
        "redis_round_trips": round(gateway_trips, 3),
        "db_queries": round(gateway_queries, 3),
        "overhead_vs_ping": round(max(overhead["gateway_enterprise"], overhead["gateway_free"]) / ping_ns, 2),
        "overhead_vs_ping_enterprise": round(overhead["gateway_enterprise"] / ping_ns, 2),
        "overhead_vs_ping_free": round(overhead["gateway_free"] / ping_ns, 2),
        "overhead_vs_ping_plan": round(overhead["gateway_plan"] / ping_ns, 2),
        "overhead_ratio_vs_drf_free": round(overhead["gateway_free"] / overhead["drf_token_free"], 3),
        "overhead_ratio_vs_drf_enterprise": round(overhead["gateway_enterprise"] / overhead["drf_token_enterprise"], 3),
        "overhead_ratio_vs_drf_api_key": round(overhead["gateway_enterprise"] / overhead["drf_api_key"], 3),
        "concurrency_attempts": args.threads * args.attempts,
        "gateway_admitted": gateway_admitted,
        "drf_admitted": drf_admitted,
        "drf_over_admitted": drf_admitted - 100,
        "tenant_keys_admitted": tenant_admitted,
        "tenant_limit_exact": tenant_admitted == 100,
        **_plan_exact(run, args.threads),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
