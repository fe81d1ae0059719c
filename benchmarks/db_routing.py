"""Primary/replica routing: our router vs Django's default routing vs django-multidb-router, in one run.

Run against the local stack (its replica streams from its primary):

    deploy/local/stack up && eval "$(deploy/local/stack env)"
    python -m benchmarks.db_routing

1. Router overhead: µs per db_for_read() decision over Django's default routing, and the time ratio of a
   read-heavy ORM loop (our router sending reads to the replica vs no router reading the primary).
2. Mixed workload: many clients (1000 by default, ~6 requests each within a few seconds: far busier than
   real clients), 90% reads / 10% writes, replica lag made with recovery_min_apply_delay (200 ms).
   Every request runs through the router's real middleware. Half the clients are browsers (keep cookies,
   have a session), half are API clients (an API key, no cookie jar — as SDKs and curl behave). A read
   is stale when a client does not see its own last write. The same request sequence runs with our
   router and with django-multidb-router's PinningReplicaRouter + PinningRouterMiddleware (cookie pinning,
   15 s default).

The last line is one JSON object.
"""

import json
import os
import random
import statistics
import sys
import time
import uuid
from types import SimpleNamespace

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings")

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "1000"))
OPERATIONS = int(os.environ.get("BENCH_OPERATIONS", "6000"))
LAG_MS = int(os.environ.get("BENCH_LAG_MS", "200"))
DECISIONS = 200_000
LOOP_QUERIES = 200
LOOP_ROUNDS = 21


def main() -> None:
    django.setup()
    from django.conf import settings

    if not settings.DATABASE_REPLICAS or "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        sys.exit('error: run against the local stack: eval "$(deploy/local/stack env)" (needs DATABASE_REPLICA_URLS)')

    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.db import router

    from dbrouting.monitor import get_monitor
    from dbrouting.router import PrimaryReplicaRouter
    from tenants.models import Tenant

    ours = PrimaryReplicaRouter()
    run_id = uuid.uuid4().hex[:8]
    tenants = Tenant.objects.bulk_create(
        [Tenant(name="v0", slug=f"bench-{run_id}-{index}") for index in range(CLIENTS)]
    )
    monitor = get_monitor()
    _wait(lambda: (snapshot := monitor.snapshot()) and snapshot.rotation, "replica in rotation")
    try:
        overhead_us, loop_ratio = _overhead(router, ours, tenants)
        _set_replica_delay(LAG_MS)
        plan = _plan(run_id)
        our_share, our_stale, our_seconds = _workload(router, "ours", ours, tenants, plan)
        from multidb import PinningReplicaRouter

        settings.REPLICA_DATABASES = list(settings.DATABASE_REPLICAS)
        multidb_share, multidb_stale, multidb_seconds = _workload(
            router, "multidb", PinningReplicaRouter(), tenants, plan
        )
    finally:
        _set_replica_delay(0)
        router.routers = [ours]
        Tenant.objects.filter(slug__startswith=f"bench-{run_id}-").delete()
        monitor.stop()

    print(
        f"router: {overhead_us:.2f} µs/decision over default routing, read loop {loop_ratio:.3f}x; "
        f"workload ({CLIENTS} clients, {OPERATIONS} requests, lag {LAG_MS} ms): "
        f"ours {our_share:.1%} on replicas, {our_stale} stale in {our_seconds:.1f}s; "
        f"multidb {multidb_share:.1%} on replicas, {multidb_stale} stale in {multidb_seconds:.1f}s",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "router_overhead_us": round(overhead_us, 3),
                "loop_ratio": round(loop_ratio, 3),
                "replica_share": round(our_share, 4),
                "stale_reads": our_stale,
                "multidb_replica_share": round(multidb_share, 4),
                "multidb_stale_reads": multidb_stale,
                "clients": CLIENTS,
                "requests": OPERATIONS,
                "replica_lag_ms": LAG_MS,
                "request_ms": round(our_seconds / OPERATIONS * 1000, 3),
                "multidb_request_ms": round(multidb_seconds / OPERATIONS * 1000, 3),
                "client_mix": "50% browsers (session cookie), 50% API clients (API key, no cookies)",
            }
        )
    )


def _wait(predicate, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            sys.exit(f"error: timed out waiting for {what}")
        time.sleep(0.05)


def _set_replica_delay(milliseconds: int) -> None:
    import psycopg
    from django.conf import settings

    config = settings.DATABASES[settings.DATABASE_REPLICAS[0]]
    with psycopg.connect(
        host=config["HOST"], port=config["PORT"], user=config["USER"], password=config.get("PASSWORD") or None,
        dbname=config["NAME"], autocommit=True,
    ) as connection:  # fmt: skip
        if milliseconds:
            connection.execute(f"ALTER SYSTEM SET recovery_min_apply_delay = '{int(milliseconds)}ms'")
        else:
            connection.execute("ALTER SYSTEM RESET recovery_min_apply_delay")
        connection.execute("SELECT pg_reload_conf()")
    time.sleep(0.5)


def _overhead(router, ours, tenants) -> tuple[float, float]:
    from django.conf import settings

    from dbrouting import routing as db_routing
    from tenants.models import Tenant

    token = db_routing.begin(client_ids=(f"bench-reader-{uuid.uuid4().hex}",))
    try:
        timings = {}
        for name, routers in (("default", []), ("ours", [ours])):
            router.routers = routers
            router.db_for_read(Tenant)
            started = time.perf_counter()
            for _ in range(DECISIONS):
                router.db_for_read(Tenant)
            timings[name] = (time.perf_counter() - started) / DECISIONS * 1e6
        overhead_us = timings["ours"] - timings["default"]

        # Both loops read the same replica server, so the ratio is the router's cost, not the servers'
        # difference: default routing is pointed there with .using(), ours picks it itself.
        replica = settings.DATABASE_REPLICAS[0]
        ids = [tenant.pk for tenant in tenants]
        loops = {"default": [], "ours": []}
        for _ in range(LOOP_ROUNDS):  # short interleaved rounds, so drift on a shared machine hits both alike
            for name, routers in (("default", []), ("ours", [ours])):
                router.routers = routers
                queryset = Tenant.objects.using(replica) if name == "default" else Tenant.objects.all()
                started = time.perf_counter()
                for index in range(LOOP_QUERIES):
                    queryset.filter(pk=ids[index % len(ids)]).first()
                loops[name].append(time.perf_counter() - started)
        assert router.db_for_read(Tenant) != "default", "the loop must have read from the replica"
        ratios = [
            ours_time / default_time for ours_time, default_time in zip(loops["ours"], loops["default"], strict=True)
        ]
        return overhead_us, statistics.median(ratios)
    finally:
        db_routing.end(token)


def _plan(run_id: str) -> list[tuple[int, bool]]:
    rng = random.Random(run_id)
    return [(rng.randrange(CLIENTS), rng.random() < 0.10) for _ in range(OPERATIONS)]


def _workload(router, name, routing, tenants, plan) -> tuple[float, int, float]:
    """Runs the request plan through the router's middleware; returns (replica share, stale reads, seconds)."""
    from django.conf import settings
    from django.db import transaction
    from django.http import HttpResponse
    from django.test import RequestFactory

    from tenants.models import Tenant

    if name == "ours":
        from dbrouting.middleware import ReadYourWritesMiddleware as Middleware
    else:
        from multidb.middleware import PinningRouterMiddleware as Middleware
    router.routers = [routing]
    factory = RequestFactory()
    # Both runs start alike: the replica has caught up with everything before.
    time.sleep(LAG_MS / 1000 + 1)
    current = dict(Tenant.objects.using("default").filter(pk__in=[t.pk for t in tenants]).values_list("pk", "name"))
    expected = {index: current[tenant.pk] for index, tenant in enumerate(tenants)}
    version = iter(range(1, 10**9))
    outcome = {"reads": 0, "replica": 0, "stale": 0}
    cookie_jars = {index: {} for index in range(CLIENTS)}  # name -> (value, expires at)

    def view(request):
        index = request.client_index
        if request.method == "POST":
            value = f"v{next(version)}"
            with transaction.atomic():
                Tenant.objects.filter(pk=tenants[index].pk).update(name=value)
            expected[index] = value
        else:
            tenant = Tenant.objects.get(pk=tenants[index].pk)
            outcome["reads"] += 1
            outcome["replica"] += tenant._state.db != "default"
            outcome["stale"] += tenant.name != expected[index]
        return HttpResponse("ok")

    middleware = Middleware(view)
    started = time.perf_counter()
    for index, is_write in plan:
        browser = index % 2 == 0
        request = factory.post("/bench") if is_write else factory.get("/bench")
        request.client_index = index
        now = time.monotonic()
        if browser:
            request.COOKIES[settings.SESSION_COOKIE_NAME] = f"session-{name}-{index}"
            request.COOKIES.update({k: v for k, (v, expires) in cookie_jars[index].items() if expires > now})
        else:
            # What the API-key gateway sets; an API client keeps no cookies.
            request.api_key = SimpleNamespace(id=f"{name}-{index}")
        response = middleware(request)
        if browser:
            for cookie, morsel in response.cookies.items():
                max_age = int(morsel["max-age"] or 0) if morsel["max-age"] != "" else 10**6
                cookie_jars[index][cookie] = (morsel.value, now + max_age)
    seconds = time.perf_counter() - started
    return outcome["replica"] / max(1, outcome["reads"]), outcome["stale"], seconds


if __name__ == "__main__":
    main()
