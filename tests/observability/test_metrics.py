"""observability/metrics.py, the API middleware and /metrics, in process against the real stack (one
module, as tests/ mirrors observability/metrics.py; so it runs to ~400 lines, a short check for each
family, label rule and scrape path)."""

import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest
import redis
from django.test import override_settings
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from observability import metrics
from observability.collectors import scrape_time_metric_names
from observability.endpoint import PLATFORM_STATE_COLLECTOR
from platform_site.celery import QUEUES
from tenants import services
from tenants.models import Tier
from tests.conftest import REPO_ROOT
from tests.observability.conftest import METRICS_TOKEN
from tests.sitebundles import bundle_build, site_v1


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(client) -> dict[str, list]:
    PLATFORM_STATE_COLLECTOR.clear()
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
    assert response.status_code == 200, response.content
    families = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            families.setdefault(s.name, []).append(s)
    return families


def value(families, name: str, **labels) -> float:
    matches = [s.value for s in families.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(matches) == 1, (name, labels, families.get(name))
    return matches[0]


def test_label_sets_match_the_domain():
    assert set(Tier.values) == metrics.TIERS


def test_unknown_label_values_are_recorded_as_other():
    before = sample("rate_limit_decisions_total", tier="other", outcome="other")
    metrics.record_rate_limit_decision(tier="platinum", outcome="maybe")
    assert sample("rate_limit_decisions_total", tier="other", outcome="other") == before + 1

    before = sample("cdn_invalidations_total", backend="default", status="completed")
    metrics.record_cdn_invalidation(backend="default", status="COMPLETED")  # moto's casing
    assert sample("cdn_invalidations_total", backend="default", status="completed") == before + 1
    before = sample("cdn_invalidations_total", backend="other", status="submitted")
    metrics.record_cdn_invalidation(backend="https://attacker/" + uuid.uuid4().hex, status="submitted")
    assert sample("cdn_invalidations_total", backend="other", status="submitted") == before + 1


@pytest.mark.django_db
def test_unknown_http_methods_never_create_new_series(client, website):
    """Any token is a valid HTTP method; a client sending made-up ones must not grow the label sets
    (django-prometheus labels its latency histogram with the raw method)."""
    from tenants.hostnames import preview_host

    def method_labels() -> set[str]:
        return {
            s.labels["method"]
            for family in REGISTRY.collect()
            if family.name.startswith(("django_http", "api_request"))
            for s in family.samples
            if "method" in s.labels
        }

    invented = [f"X{uuid.uuid4().hex[:10].upper()}" for _ in range(5)] + ["PROPFIND", "TRACE"]
    for method in invented:
        for path, host in (("/api/v1/websites/", "testserver"), ("/healthz", "testserver"), ("/admin/", "testserver"),
                           ("/", preview_host(website.pk))):  # fmt: skip
            client.generic(method, path, HTTP_HOST=host)
    labels = method_labels()
    assert "other" in labels and not labels - (metrics.HTTP_METHODS | {"other"}), labels
    # A tenant's site is not the API, whatever its paths: its requests are not timed as API requests.
    before = sample("api_request_duration_seconds_count", method="GET", route="website-list", status_class="4xx")
    client.get("/api/v1/websites/", HTTP_HOST=preview_host(website.pk))
    assert (
        sample("api_request_duration_seconds_count", method="GET", route="website-list", status_class="4xx") == before
    )
    before = sample("api_request_duration_seconds_count", method="other", route="website-list", status_class="4xx")
    client.generic("XYZZY", "/api/v1/websites/")
    assert sample("api_request_duration_seconds_count", method="other", route="website-list", status_class="4xx") == (
        before + 1
    )


def test_webhook_delivery_records_count_and_latency():
    before = sample("webhook_delivery_duration_seconds_bucket", outcome="failed", le="0.5")
    count = sample("webhook_deliveries_total", outcome="failed")
    metrics.record_webhook_delivery(outcome="failed", seconds=0.3)
    assert sample("webhook_deliveries_total", outcome="failed") == count + 1
    assert sample("webhook_delivery_duration_seconds_bucket", outcome="failed", le="0.5") == before + 1


def test_api_key_auth_failures_by_bounded_reason():
    before = sample("api_key_auth_failures_total", reason="revoked")
    other = sample("api_key_auth_failures_total", reason="other")
    metrics.record_api_key_auth_failure(reason="revoked")
    metrics.record_api_key_auth_failure(reason="plk_live_" + uuid.uuid4().hex)  # never a key in a label
    assert sample("api_key_auth_failures_total", reason="revoked") == before + 1
    assert sample("api_key_auth_failures_total", reason="other") == other + 1


@pytest.mark.django_db
def test_replica_monitor_state_in_every_scrape(client):
    from dbrouting.monitor import get_monitor

    monitor = get_monitor()
    snapshot = monitor.refresh()
    # Holding the poll lock keeps the poller from replacing the snapshot: the scrape must export exactly
    # the positions the router acts on.
    with monitor._poll_lock:  # noqa: SLF001 - the monitor's own lock, held only for this one scrape
        families = scrape(client)
    replica = snapshot.replicas["replica_1"]
    assert value(families, "platform_db_primary_up") == 1
    assert value(families, "platform_db_replica_up", alias="replica_1") == 1
    assert value(families, "platform_db_replica_in_rotation", alias="replica_1") == int(replica.in_rotation)
    assert value(families, "platform_db_replica_replay_lsn_bytes", alias="replica_1") == replica.replay_lsn
    assert value(families, "platform_db_replica_lag_bytes", alias="replica_1") == replica.lag_bytes
    assert value(families, "metrics_source_up", source="replicas") == 1


def test_gateway_backend_errors_by_mode():
    before = sample("platform_api_gateway_backend_errors_total", mode="open")
    metrics.record_gateway_backend_error(mode="open")
    assert sample("platform_api_gateway_backend_errors_total", mode="open") == before + 1


@pytest.mark.django_db
def test_origin_bytes_count_for_the_tier_and_the_tenant(tenant):
    from tenants.usage import origin_served, tenant_usage_get

    before = sample("origin_bytes_served_total")
    origin_served(tenant_id=tenant.pk, nbytes=2048)
    assert sample("origin_bytes_served_total") == before + 2048
    usage = tenant_usage_get(tenant=tenant)
    assert (usage.requests, usage.bandwidth_bytes) == (1, 2048)


@pytest.mark.django_db
def test_deployment_outcomes_counted_after_commit_only(website, django_capture_on_commit_callbacks):
    tenant_id = str(website.tenant_id)
    with django_capture_on_commit_callbacks(execute=True):
        deployment = services.deployment_create(website=website, run=False, bundle=bundle_build(site_v1()))
        services.deployment_execute(deployment=deployment)
    assert sample("deployments_total", tenant_id=tenant_id, status="succeeded") == 1

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        failed = services.deployment_create(website=website, run=False)
        services.deployment_fail(deployment=failed, error="bundle missing")
    assert sample("deployments_total", tenant_id=tenant_id, status="failed") == 0  # not committed yet
    for callback in callbacks:
        callback()
    assert sample("deployments_total", tenant_id=tenant_id, status="failed") == 1


@pytest.mark.django_db
def test_api_requests_timed_by_route_and_status_class(staff_client, tenant):
    ok = sample("api_request_duration_seconds_count", method="GET", route="tenant-detail", status_class="2xx")
    missing = sample("api_request_duration_seconds_count", method="GET", route="unmatched", status_class="4xx")
    invalid = sample("api_request_duration_seconds_count", method="POST", route="tenant-list", status_class="4xx")
    assert staff_client.get(f"/api/v1/tenants/{tenant.pk}/").status_code == 200
    assert staff_client.get("/api/v1/no-such-thing/").status_code == 404
    assert staff_client.post("/api/v1/tenants/", {"name": ""}, format="json").status_code == 400
    assert (
        sample("api_request_duration_seconds_count", method="GET", route="tenant-detail", status_class="2xx") == ok + 1
    )
    assert (
        sample("api_request_duration_seconds_count", method="GET", route="unmatched", status_class="4xx") == missing + 1
    )
    assert (
        sample("api_request_duration_seconds_count", method="POST", route="tenant-list", status_class="4xx")
        == invalid + 1
    )
    # Raw paths (with ids) never become label values.
    routes = {
        s.labels.get("route") for f in REGISTRY.collect() if f.name == "api_request_duration_seconds" for s in f.samples
    }
    assert not any(str(tenant.pk) in (route or "") for route in routes)


def _api_requests_timed() -> float:
    return sum(
        s.value
        for f in REGISTRY.collect()
        if f.name == "api_request_duration_seconds"
        for s in f.samples
        if s.name.endswith("_count")
    )


@pytest.mark.django_db
def test_non_api_paths_are_not_timed(client):
    total = _api_requests_timed()
    assert client.get("/healthz").status_code == 200
    after = _api_requests_timed()
    assert after == total


# --- /metrics access ---------------------------------------------------------------------------


@pytest.mark.django_db
@override_settings(REAL_MODE=False, METRICS_TOKEN="")
def test_metrics_public_in_embedded_mode(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"# TYPE api_request_duration_seconds histogram" in response.content


@pytest.mark.django_db
@override_settings(REAL_MODE=True, METRICS_TOKEN="")
def test_metrics_absent_in_real_mode_without_a_token(client):
    response = client.get("/metrics")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
@override_settings(REAL_MODE=True, METRICS_TOKEN="s3cret-metrics-token")
def test_metrics_need_the_bearer_token_in_real_mode(client):
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    assert wrong.status_code == 401
    assert wrong["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-metrics-token").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token").status_code == 200


# --- scrape-time state -------------------------------------------------------------------------


@pytest.fixture
def isolated_broker():
    """A broker database of its own, so queue-depth tests never feed the shared test worker."""
    import os

    url = os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/5"
    client = redis.Redis.from_url(url)
    client.flushdb()
    with override_settings(CELERY_BROKER_URL=url, CELERY_TASK_ALWAYS_EAGER=False):
        yield client
    client.flushdb()
    client.close()


@pytest.mark.django_db
def test_database_and_queue_state_collected_at_scrape_time(client, isolated_broker):
    a = services.tenant_create(name="A", slug="obs-a", tier="free")
    b = services.tenant_create(name="B", slug="obs-b", tier="enterprise")
    services.tenant_create(name="C", slug="obs-c", tier="enterprise")
    services.tenant_suspend(tenant=b, reason="unpaid")
    services.website_create(tenant=a, name="served")
    disabled = services.website_create(tenant=a, name="off")
    services.website_update(website=disabled, status="disabled")
    services.website_create(tenant=b, name="of a suspended tenant")
    isolated_broker.lpush("webhooks", *[b"{}"] * 7)
    isolated_broker.lpush("webhooks\x06\x163", b"{}")  # kombu's key for priority 3
    isolated_broker.lpush("cdn", b"{}")

    archived_before = _archived_count()
    families = scrape(client)
    archived_after = _archived_count()
    assert value(families, "tenants_total", tier="enterprise", status="suspended") == 1
    assert value(families, "tenants_total", tier="enterprise", status="active") == 1
    assert value(families, "tenants_total", tier="free", status="active") == 1
    assert value(families, "websites_total", status="active") == 2
    assert value(families, "active_websites_total") == 1
    assert value(families, "celery_queue_length", queue="webhooks") == 8
    assert value(families, "celery_queue_length", queue="cdn") == 1
    assert value(families, "celery_queue_length", queue="default") == 0
    # pg_stat_archiver's count at the time of the scrape (the stack archives WAL as it goes).
    assert archived_before <= value(families, "wal_archived_total") <= archived_after
    assert value(families, "metrics_source_up", source="broker") == 1


def _archived_count() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT archived_count FROM pg_stat_archiver")
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_a_source_down_drops_only_its_metrics(client):
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0", CELERY_TASK_ALWAYS_EAGER=False):
        families = scrape(client)
    assert value(families, "metrics_source_up", source="broker") == 0
    assert "celery_queue_length" not in families
    assert value(families, "metrics_source_up", source="database") == 1
    assert "active_websites_total" in families


@pytest.mark.django_db
def test_scrape_time_cache_bounds_database_work(client, django_assert_max_num_queries):
    scrape(client)
    with override_settings(METRICS_COLLECTOR_CACHE_SECONDS=300), django_assert_max_num_queries(0):
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
    assert b"tenants_total" in response.content


@pytest.mark.django_db
def test_last_backup_of_each_type_comes_from_the_records(client):
    from datetime import timedelta

    from backups.models import BackupRun, TenantExport

    finished = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
    for kind, status, minutes_ago in (("full", "succeeded", 60), ("full", "succeeded", 0), ("full", "failed", -5)):
        run = BackupRun.objects.create(engine="pgbackrest", kind=kind, status=status)
        end = finished - timedelta(minutes=minutes_ago)
        BackupRun.objects.filter(pk=run.pk).update(started_at=end - timedelta(seconds=4.5), finished_at=end)
    export = TenantExport.objects.create(status="succeeded")
    TenantExport.objects.filter(pk=export.pk).update(started_at=finished - timedelta(seconds=1), finished_at=finished)
    families = scrape(client)
    # The newest success, not the later failure; a restarted process reads the same rows.
    assert value(families, "backup_last_success_timestamp_seconds", type="full") == finished.timestamp()
    assert value(families, "backup_last_duration_seconds", type="full") == 4.5
    assert value(families, "backup_last_duration_seconds", type="tenant_export") == 1.0
    assert "incr" not in {s.labels["type"] for s in families["backup_last_success_timestamp_seconds"]}


@pytest.mark.django_db
def test_declared_scrape_time_names_are_what_the_collector_exports(client, website):
    from backups.models import BackupRun

    BackupRun.objects.create(engine="pgbackrest", kind="full", status="succeeded", finished_at=datetime.now(UTC))
    exported = set(scrape(client))
    produced = {name for name in exported if name in scrape_time_metric_names()}
    # Only the last-failure time is absent while archiving has never failed.
    assert scrape_time_metric_names() - produced <= {"wal_archive_last_failure_timestamp_seconds"}
    state_samples = {s.name for family in PLATFORM_STATE_COLLECTOR.collect() for s in family.samples}
    assert state_samples <= scrape_time_metric_names(), state_samples - scrape_time_metric_names()


# --- per-tenant usage family -------------------------------------------------------------------


@pytest.mark.django_db
def test_tenant_usage_family_is_switchable_and_capped(client):
    for index in range(3):
        services.tenant_create(name=f"T{index}", slug=f"usage-cap-{index}")
    assert len(scrape(client)["tenant_cost_dollars"]) == 3
    with override_settings(METRICS_TENANT_SERIES_LIMIT=2):
        assert len(scrape(client)["tenant_cost_dollars"]) == 2
    with override_settings(METRICS_TENANT_USAGE_ENABLED=False):
        families = scrape(client)
    assert not any(name.startswith("tenant_") for name in families)
    assert "tenants_total" in families


def test_bad_unit_price_stops_the_process_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=REPO_ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "platform_site.settings",
            "PLATFORM_VAR_DIR": str(tmp_path),
            "USAGE_PRICE_BANDWIDTH_GIB": "cheap",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip() == "error: USAGE_PRICE_BANDWIDTH_GIB must be a non-negative decimal number, got 'cheap'"
    )


def test_queue_names_are_the_celery_queues():
    assert set(QUEUES) == {"default", "webhooks", "cdn", "backups"}


@pytest.mark.parametrize(("pool", "counted"), [("threads", True), ("prefork", False)])
def test_a_threads_worker_counts_its_own_process(pool, counted, monkeypatch):
    """celery_worker_processes: prefork children count themselves (worker_process_init); a threads worker
    (the webhooks workers) runs tasks in its own process, so it counts itself when ready."""
    from types import SimpleNamespace

    from celery.concurrency import get_implementation

    from observability import celery_metrics

    marked = []
    monkeypatch.setattr(metrics, "set_celery_process_alive", lambda: marked.append(True))
    celery_metrics._worker_alive(sender=SimpleNamespace(pool=get_implementation(pool)(limit=1)))
    assert marked == ([True] if counted else [])
