"""Instrumentation cost and scrape time: `python -m benchmarks.observability` (stack env loaded).

1. overhead_ratio: the same API view (GET /api/v1/tenants/<id>/ as an operator) called through Django's
   WSGI handler in a loop, with the platform's middleware stack and with the metrics middlewares
   (django-prometheus Before/After, ApiMetricsMiddleware) removed, in many short interleaved rounds.
   overhead_ratio compares the fastest round of each side: on a shared machine other load only ever adds
   time, so the minimum is the steadiest estimate of the code's own cost; the ratio of medians is
   printed beside it. The database cursor wrapper of django-prometheus is in both (it is the engine).
2. scrape_ms_1000_tenants: one /metrics scrape with 1,000 tenants' worth of series (per-tenant usage
   family, deployments_total per tenant), the scrape-time cache off so every scrape recomputes; side by
   side with prometheus_client's own exposition of the process registry alone.

Runs in a database of its own (created and dropped here) on the stack's primary.
"""

import io
import json
import os
import statistics
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings")
os.environ.pop("DATABASE_REPLICA_URLS", None)  # the benchmark's database exists on the primary only
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # one process: the default registry

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from prometheus_client import REGISTRY, generate_latest  # noqa: E402

TENANTS = 1000
ROUNDS = 30
REQUESTS_PER_ROUND = 50
SCRAPES = 10
METRICS_MIDDLEWARE = {
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "observability.instrumentation.PrometheusAfterMiddleware",
    "observability.instrumentation.ApiMetricsMiddleware",
}


def _environ(path: str, headers: dict) -> dict:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    environ.update(headers)
    return environ


def _call(handler, path: str, headers: dict) -> bytes:
    status_line = []
    body = b"".join(handler(_environ(path, headers), lambda status, _headers, *_: status_line.append(status)))
    if not status_line[0].startswith("200"):
        raise SystemExit(f"benchmark: {path} answered {status_line[0]}: {body[:200]!r}")
    return body


def _timed_loop(handler, path: str, headers: dict, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        _call(handler, path, headers)
    return (time.perf_counter() - started) / count


def measure_overhead(tenant_id, cookie: str) -> dict:
    instrumented = WSGIHandler()
    with override_settings(MIDDLEWARE=[m for m in settings.MIDDLEWARE if m not in METRICS_MIDDLEWARE]):
        bare = WSGIHandler()
    path = f"/api/v1/tenants/{tenant_id}/"
    headers = {"HTTP_COOKIE": cookie}
    for handler in (instrumented, bare):  # warm connections, caches, URL resolver
        _timed_loop(handler, path, headers, 50)
    with_times, without_times = [], []
    for round_number in range(ROUNDS):
        # Alternate which goes first so drift on a shared machine hits both sides alike.
        order = [(instrumented, with_times), (bare, without_times)]
        for handler, times in order if round_number % 2 == 0 else reversed(order):
            times.append(_timed_loop(handler, path, headers, REQUESTS_PER_ROUND))
    with_median, without_median = statistics.median(with_times), statistics.median(without_times)
    return {
        "overhead_ratio": round(min(with_times) / min(without_times), 4),
        "overhead_ratio_median": round(with_median / without_median, 4),
        "request_us_with_metrics": round(min(with_times) * 1e6, 1),
        "request_us_without_metrics": round(min(without_times) * 1e6, 1),
    }


def populate(count: int) -> list:
    from observability import metrics
    from tenants.models import Deployment, Tenant, Website
    from tenants.usage import usage_record

    tiers = ["free", "starter", "professional", "enterprise"]
    tenants = Tenant.objects.bulk_create(
        [Tenant(name=f"Bench {i}", slug=f"bench-{i:05d}", tier=tiers[i % 4]) for i in range(count)]
    )
    websites = Website.objects.bulk_create([Website(tenant=t, name="www") for t in tenants])
    now = django.utils.timezone.now()
    deployments = Deployment.objects.bulk_create(
        [
            Deployment(website=w, number=n, status=status, started_at=now, finished_at=now)
            for w in websites
            for n, status in ((1, "failed"), (2, "succeeded"))
        ]
    )
    for website, deployment in zip(websites, deployments[1::2], strict=True):
        website.active_deployment = deployment
    Website.objects.bulk_update(websites, ["active_deployment"])
    for tenant in tenants:
        metrics.record_deployment(tenant_id=tenant.pk, status="succeeded")
        metrics.record_deployment(tenant_id=tenant.pk, status="failed")
        usage_record(tenant_id=tenant.pk, requests=1000, bytes_served=10_000_000)
    return tenants


def measure_scrape(headers: dict) -> dict:
    from observability.endpoint import PLATFORM_STATE_COLLECTOR

    handler = WSGIHandler()
    with override_settings(METRICS_COLLECTOR_CACHE_SECONDS=0):
        body = _call(handler, "/metrics", headers)  # warm-up
        cold = []
        for _ in range(SCRAPES):
            started = time.perf_counter()
            _call(handler, "/metrics", headers)
            cold.append(time.perf_counter() - started)
    PLATFORM_STATE_COLLECTOR.clear()
    _call(handler, "/metrics", headers)
    cached = []
    for _ in range(SCRAPES):
        started = time.perf_counter()
        _call(handler, "/metrics", headers)
        cached.append(time.perf_counter() - started)
    registry_only = []
    for _ in range(SCRAPES):
        started = time.perf_counter()
        generate_latest(REGISTRY)
        registry_only.append(time.perf_counter() - started)
    series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
    return {
        "scrape_ms_1000_tenants": round(statistics.median(cold) * 1000, 2),
        "scrape_ms_1000_tenants_cached_state": round(statistics.median(cached) * 1000, 2),
        "scrape_ms_registry_only": round(statistics.median(registry_only) * 1000, 2),
        "series_in_scrape": series,
    }


def main() -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from console.roles import SUPPORT

    setup_test_environment()
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = "bench_observability"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    settings.METRICS_TOKEN = "benchmark-token"  # noqa: S105 - a throwaway token for this run
    usage_keys = []
    try:
        user = get_user_model().objects.create_user(username="bench", password="bench-pass-1", is_staff=True)  # noqa: S106
        user.groups.add(Group.objects.get(name=SUPPORT))  # an operator who may view tenants (console.roles)
        client = Client()
        client.force_login(user)
        cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        print(f"benchmark: populating {TENANTS} tenants", file=sys.stderr)
        tenants = populate(TENANTS)
        usage_keys = [f"usage:{kind}:{t.pk}" for t in tenants for kind in ("requests", "bandwidth")]
        print("benchmark: measuring per-request overhead", file=sys.stderr)
        result = measure_overhead(tenants[0].pk, cookie)
        print("benchmark: measuring /metrics scrapes", file=sys.stderr)
        result.update(measure_scrape({"HTTP_AUTHORIZATION": "Bearer benchmark-token"}))
        result["tenants"] = TENANTS
    finally:
        cache.delete_many(usage_keys)
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
