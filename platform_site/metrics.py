"""Every platform metric, defined once: name, help, labels, buckets, and the function that records it.

Capabilities never touch prometheus_client objects directly: they call the typed `record_*` / `set_*`
functions below, which also clamp label values to the documented sets (anything else becomes "other"),
so a bug or a hostile input can never create unbounded series.

Label cardinality (series per metric, at most):

| metric                                   | labels                      | bound                               |
|------------------------------------------|-----------------------------|-------------------------------------|
| deployments_total                        | tenant_id, status           | tenants x 2 (the seed asks for it)  |
| api_request_duration_seconds             | method, route, status_class | 8 methods x API view names x 5      |
| active_websites_total                    | -                           | 1                                   |
| tenants_total                            | tier, status                | 4 x 2                               |
| websites_total                           | status                      | 2                                   |
| rate_limit_decisions_total               | tier, outcome               | 5 x 4                               |
| api_key_auth_failures_total              | reason                      | 7                                   |
| platform_api_gateway_backend_errors_total| mode                        | 3                                   |
| webhook_deliveries_total                 | outcome                     | 5                                   |
| webhook_delivery_duration_seconds        | outcome                     | 5 x buckets                         |
| webhook_breaker_transitions_total        | transition                  | 6                                   |
| celery_queue_length                      | queue                       | celery QUEUES (4)                   |
| celery_tasks_total                       | task, outcome               | registered tasks x 4                |
| cdn_invalidations_total                  | backend, status             | configured CDN aliases x 5          |
| origin_bytes_served_total                | -                           | 1                                   |
| backup_last_success_timestamp_seconds    | type                        | 4 (full, diff, incr, tenant_export) |
| backup_last_duration_seconds             | type                        | 4                                   |
| platform_backup_runs_total               | kind, status                | 4 x 3                               |
| platform_wal_archive_ok, _segments_behind| -                           | 1 each                              |
| platform_backup_repo_up, platform_wal_archive_repo_ok, _repo_segments_behind | repo | pgBackRest repositories (<= 4) |
| pg_wal_bytes, wal_ready_bytes            | -                           | 1 each                              |
| wal_archive_* (from pg_stat_archiver)    | -                           | 1 each                              |
| platform_db_replica_* (monitor's view)   | alias                       | configured replicas                 |
| platform_db_primary_up                   | -                           | 1                                   |
| metrics_source_up                        | source                      | 6                                   |
| web_workers, celery_worker_processes     | -                           | 1 each (livesum of live processes)  |
| tenant_* (per-tenant usage family)       | tenant_id                   | one series per tenant per metric,   |
|                                          |                             | switchable, capped (settings)       |

Counters and histograms live in prometheus_client's registry; under gunicorn and Celery prefork they are
written to PROMETHEUS_MULTIPROC_DIR and summed at scrape time (platform_site/metrics_endpoint.py).
State that must survive a process restart or is the same for every process (database counts, queue
depth, last backup, WAL archiver) is not kept in process memory at all: the web /metrics collects it at
scrape time from its source of truth, cached a few seconds (`PlatformStateCollector`).
"""

import functools
import logging
import time
from collections.abc import Callable, Iterable

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

OTHER = "other"

# Bounded label values. A value outside its set is recorded as "other".
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
TIERS = frozenset({"free", "starter", "professional", "enterprise"})  # tenants.models.Tier (checked by a test)
DEPLOYMENT_OUTCOMES = frozenset({"succeeded", "failed"})
RATE_LIMIT_OUTCOMES = frozenset({"allowed", "limited", "unchecked"})
AUTH_FAILURE_REASONS = frozenset(
    {"malformed", "invalid", "revoked", "expired", "tenant_suspended", "too_many_failures"}
)
WEBHOOK_OUTCOMES = frozenset({"delivered", "retrying", "failed", "lost"})
WEBHOOK_BREAKER_TRANSITIONS = frozenset({"opened", "probe", "reopened", "closed", "reset"})
CDN_INVALIDATION_STATUSES = frozenset({"submitted", "completed", "failed", "throttled", "retrying"})
TASK_OUTCOMES = frozenset({"succeeded", "failed", "retried"})


def _bounded(value, allowed: Iterable[str]) -> str:
    value = str(value)
    return value if value in allowed else OTHER


def http_method_label(method) -> str:
    """A request's method as a metric label: one of HTTP_METHODS or "other", so a client inventing
    methods cannot create series."""
    return _bounded(method, HTTP_METHODS)


# --- the seed ---------------------------------------------------------------------------------

DEPLOYMENTS = Counter(
    "deployments",
    "Deployments that finished, by tenant and outcome (succeeded|failed).",
    ["tenant_id", "status"],
)

API_REQUEST_DURATION = Histogram(
    "api_request_duration_seconds",
    "Time to answer a /api/ request, by method, bounded route name (the URL pattern's name) and status class.",
    ["method", "route", "status_class"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# --- API gateway ------------------------------------------------------------------------------

RATE_LIMIT_DECISIONS = Counter(
    "rate_limit_decisions",
    "Rate limiter decisions by tenant tier and outcome (allowed|limited).",
    ["tier", "outcome"],
)

API_KEY_AUTH_FAILURES = Counter(
    "api_key_auth_failures",
    "API requests refused at key authentication, by reason.",
    ["reason"],
)

# --- webhooks ---------------------------------------------------------------------------------

WEBHOOK_DELIVERIES = Counter(
    "webhook_deliveries",
    "Webhook delivery attempts by outcome: delivered, retrying (failed, another attempt is scheduled), failed "
    "(failed, no more attempts).",
    ["outcome"],
)

WEBHOOK_DELIVERY_DURATION = Histogram(
    "webhook_delivery_duration_seconds",
    "Time of one webhook delivery attempt (request to response or error), by outcome.",
    ["outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

WEBHOOK_BREAKER = Counter(
    "webhook_breaker_transitions",
    "Endpoint circuit-breaker transitions: opened (too many failures in a row), probe (one request after the "
    "cool-down), reopened (the probe failed), closed (a request succeeded), reset (by an operator).",
    ["transition"],
)

# --- CDN and origin ---------------------------------------------------------------------------

CDN_INVALIDATIONS = Counter(
    "cdn_invalidations",
    "CDN invalidation requests by backend alias and status (submitted|completed|failed).",
    ["backend", "status"],
)

ORIGIN_BYTES_SERVED = Counter(
    "origin_bytes_served",
    "Bytes of deployed assets the origin served (per tenant: tenant_bandwidth_bytes_total).",
)

# --- API gateway internals -------------------------------------------------------------------

GATEWAY_BACKEND_ERRORS = Counter(
    "platform_api_gateway_backend_errors",
    "Requests the API gateway served without its Redis store, by failure mode.",
    ["mode"],
)

# --- backups (recorded where they run: a Celery worker or a management command) -------------------

BACKUP_RUNS = Counter("platform_backup_runs", "Backup operations by kind and outcome", ["kind", "status"])
# Set by backups.services.wal_archive_check; "mostrecent": the latest check of any process wins.
WAL_ARCHIVE_OK = Gauge(
    "platform_wal_archive_ok", "1 when WAL archiving works and keeps up, else 0", multiprocess_mode="mostrecent"
)
WAL_ARCHIVE_SEGMENTS_BEHIND = Gauge(
    "platform_wal_archive_segments_behind",
    "WAL segments between the current one and the last archived",
    multiprocess_mode="mostrecent",
)
# Per pgBackRest repository (repo = its key, 1..4), set by the same check (every minute).
BACKUP_REPO_UP = Gauge(
    "platform_backup_repo_up", "1 when the backup repository answered the last check", ["repo"],
    multiprocess_mode="mostrecent",
)  # fmt: skip
WAL_ARCHIVE_REPO_OK = Gauge(
    "platform_wal_archive_repo_ok", "1 when WAL reaches this repository and keeps up, else 0", ["repo"],
    multiprocess_mode="mostrecent",
)  # fmt: skip
WAL_ARCHIVE_REPO_SEGMENTS_BEHIND = Gauge(
    "platform_wal_archive_repo_segments_behind",
    "WAL segments between the current one and the newest in this repository",
    ["repo"],
    multiprocess_mode="mostrecent",
)
WAL_ARCHIVE_CHECK_TIMESTAMP = Gauge(
    "platform_wal_archive_check_timestamp_seconds",
    "When the WAL archive check last ran to the end",
    multiprocess_mode="mostrecent",
)

# --- Celery tasks (recorded in the worker processes) -------------------------------------------

CELERY_TASKS = Counter(
    "celery_tasks",
    "Celery tasks that finished, by task name and outcome (succeeded|failed|retried).",
    ["task", "outcome"],
)


# --- process liveness (multiprocess "livesum": a dead process drops out once marked dead) ----------

WEB_WORKERS = Gauge("web_workers", "gunicorn worker processes alive in this server.", multiprocess_mode="livesum")
CELERY_WORKER_PROCESSES = Gauge(
    "celery_worker_processes", "Celery pool processes alive on this worker host.", multiprocess_mode="livesum"
)


def set_web_worker_alive() -> None:
    """Called by each gunicorn worker once it has loaded the app (gunicorn.conf.py post_worker_init)."""
    WEB_WORKERS.set(1)


def set_celery_process_alive() -> None:
    """Called in each Celery pool process when it starts (celery_metrics.py worker_process_init)."""
    CELERY_WORKER_PROCESSES.set(1)


# --- recording functions: what the capabilities call -----------------------------------------


def record_wal_archive_check(status: dict) -> None:
    """The outcome of backups.services.wal_archive_check: overall and per repository."""
    WAL_ARCHIVE_OK.set(1 if status["ok"] else 0)
    if status.get("segments_behind") is not None:
        WAL_ARCHIVE_SEGMENTS_BEHIND.set(status["segments_behind"])
    for repo in status.get("repos", []):
        key = str(int(repo["repo"]))
        BACKUP_REPO_UP.labels(repo=key).set(1 if repo["reachable"] else 0)
        WAL_ARCHIVE_REPO_OK.labels(repo=key).set(1 if repo["ok"] else 0)
        if repo.get("segments_behind") is not None:
            WAL_ARCHIVE_REPO_SEGMENTS_BEHIND.labels(repo=key).set(repo["segments_behind"])
    WAL_ARCHIVE_CHECK_TIMESTAMP.set(time.time())


def record_deployment(*, tenant_id, status: str) -> None:
    """A deployment finished (call after commit). status: succeeded|failed."""
    DEPLOYMENTS.labels(tenant_id=str(tenant_id), status=_bounded(status, DEPLOYMENT_OUTCOMES)).inc()


def record_api_request(*, method: str, route: str, status_code: int, seconds: float) -> None:
    """One /api/ request answered; route must be a URL pattern name, never a raw path."""
    API_REQUEST_DURATION.labels(
        method=_bounded(method, HTTP_METHODS), route=route, status_class=f"{status_code // 100}xx"
    ).observe(seconds)


@functools.lru_cache(maxsize=64)
def _rate_limit_child(tier: str, outcome: str):
    return RATE_LIMIT_DECISIONS.labels(tier=_bounded(tier, TIERS), outcome=_bounded(outcome, RATE_LIMIT_OUTCOMES))


def record_rate_limit_decision(*, tier: str, outcome: str) -> None:
    """The rate limiter decided on a request. outcome: allowed|limited|unchecked (Redis down, failing open)."""
    _rate_limit_child(tier, outcome).inc()


@functools.lru_cache(maxsize=64)
def _auth_failure_child(reason: str):
    return API_KEY_AUTH_FAILURES.labels(reason=_bounded(reason, AUTH_FAILURE_REASONS))


def record_api_key_auth_failure(*, reason: str) -> None:
    """The gateway refused a request's credentials; reason in AUTH_FAILURE_REASONS."""
    _auth_failure_child(reason).inc()


def record_gateway_backend_error(*, mode: str) -> None:
    """The gateway served a request without Redis; mode: open|closed (API_GATEWAY_FAIL_MODE)."""
    GATEWAY_BACKEND_ERRORS.labels(mode=_bounded(mode, {"open", "closed"})).inc()


def record_webhook_delivery(*, outcome: str, seconds: float) -> None:
    """One webhook delivery attempt finished (webhooks.delivery). outcome: WEBHOOK_OUTCOMES."""
    outcome = _bounded(outcome, WEBHOOK_OUTCOMES)
    WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()
    WEBHOOK_DELIVERY_DURATION.labels(outcome=outcome).observe(seconds)


def record_webhook_breaker(*, transition: str) -> None:
    """An endpoint's circuit breaker changed state (webhooks.policy). transition: WEBHOOK_BREAKER_TRANSITIONS."""
    WEBHOOK_BREAKER.labels(transition=_bounded(transition, WEBHOOK_BREAKER_TRANSITIONS)).inc()


def record_cdn_invalidation(*, backend: str, status: str) -> None:
    """A CDN invalidation changed state. backend: the CDN_BACKENDS alias; status: CDN_INVALIDATION_STATUSES."""
    from django.conf import settings

    CDN_INVALIDATIONS.labels(
        backend=_bounded(backend, settings.CDN_BACKENDS.keys()),
        status=_bounded(str(status).lower(), CDN_INVALIDATION_STATUSES),
    ).inc()


def record_origin_bytes_served(*, tenant_id, nbytes: int) -> None:
    """The origin answered one request for a tenant's website with nbytes of body: the platform counter
    plus the tenant's usage (one Redis round trip)."""
    from tenants.usage import usage_record

    ORIGIN_BYTES_SERVED.inc(nbytes)
    usage_record(tenant_id=tenant_id, requests=1, bytes_served=nbytes)


def record_celery_task(*, task: str, outcome: str) -> None:
    CELERY_TASKS.labels(task=task, outcome=_bounded(outcome, TASK_OUTCOMES)).inc()


# --- collected at scrape time (web /metrics only) ----------------------------------------------


class _Cached:
    """Run a collection function at most once every `ttl` seconds in this process."""

    def __init__(self, function: Callable[[], list], ttl: Callable[[], float]):
        self.function = function
        self.ttl = ttl
        self.value: list = []
        self.at = float("-inf")

    def __call__(self) -> list:
        now = time.monotonic()
        if now - self.at >= self.ttl():
            self.value = self.function()
            self.at = now
        return self.value

    def clear(self) -> None:
        self.at = float("-inf")


def _cache_seconds() -> float:
    from django.conf import settings

    return settings.METRICS_COLLECTOR_CACHE_SECONDS


def _database_families() -> list:
    from django.db.models import Count

    from tenants.models import Tenant, Website

    tenants = GaugeMetricFamily("tenants_total", "Tenants by tier and status.", labels=["tier", "status"])
    for row in Tenant.objects.values("tier", "status").annotate(n=Count("pk")).order_by():
        tenants.add_metric([row["tier"], row["status"]], row["n"])
    websites = GaugeMetricFamily("websites_total", "Websites by status.", labels=["status"])
    for row in Website.objects.values("status").annotate(n=Count("pk")).order_by():
        websites.add_metric([row["status"]], row["n"])
    active = Website.objects.filter(status=Website.Status.ACTIVE, tenant__status=Tenant.Status.ACTIVE).count()
    return [
        tenants,
        websites,
        GaugeMetricFamily(
            "active_websites_total", "Websites being served: active websites of active tenants.", value=active
        ),
    ]


def _queue_families() -> list:
    from django.conf import settings

    from platform_site.celery import QUEUES

    if settings.CELERY_TASK_ALWAYS_EAGER or not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return []
    import redis

    family = GaugeMetricFamily(
        "celery_queue_length", "Tasks waiting in the broker, per Celery queue.", labels=["queue"]
    )
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        with client.pipeline(transaction=False) as pipe:
            # Kombu keeps one Redis list per queue and priority step: "name" and "name\x06\x16<priority>".
            keys = {queue: [queue, *(f"{queue}\x06\x16{p}" for p in (3, 6, 9))] for queue in QUEUES}
            for queue_keys in keys.values():
                for key in queue_keys:
                    pipe.llen(key)
            lengths = iter(pipe.execute())
        for queue, queue_keys in keys.items():
            family.add_metric([queue], sum(next(lengths) for _ in queue_keys))
    finally:
        client.close()
    return [family]


def _wal_archive_families() -> list:
    from django.db import connections

    connection = connections["default"]
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT archived_count, failed_count, extract(epoch FROM last_archived_time),"
            " extract(epoch FROM last_failed_time) FROM pg_stat_archiver"
        )
        archived, failed, last_archived, last_failed = cursor.fetchone()
    families = [
        CounterMetricFamily("wal_archived", "WAL segments archived (pg_stat_archiver).", value=archived),
        CounterMetricFamily("wal_archive_failures", "Failed WAL archive attempts (pg_stat_archiver).", value=failed),
    ]
    from backups.selectors import wal_backlog

    backlog = wal_backlog()
    if backlog["pg_wal_bytes"] is not None:
        families.append(
            GaugeMetricFamily("pg_wal_bytes", "Size of the primary's pg_wal.", value=backlog["pg_wal_bytes"])
        )
        families.append(
            GaugeMetricFamily(
                "wal_ready_bytes",
                "WAL in pg_wal that PostgreSQL has not archived yet (its .ready segments).",
                value=backlog["wal_ready_bytes"],
            )
        )
    if last_archived is not None:
        families.append(
            GaugeMetricFamily(
                "wal_archive_last_success_timestamp_seconds",
                "When the last WAL segment was archived.",
                value=float(last_archived),
            )
        )
    if last_failed is not None:
        families.append(
            GaugeMetricFamily(
                "wal_archive_last_failure_timestamp_seconds",
                "When WAL archiving last failed.",
                value=float(last_failed),
            )
        )
    return families


def _backup_families() -> list:
    """The last successful backup of each kind, from the BackupRun/TenantExport records (restart-proof)."""
    from backups.models import BackupKind, BackupRun, TenantExport

    last = GaugeMetricFamily(
        "backup_last_success_timestamp_seconds",
        "When the last successful backup of each type finished.",
        labels=["type"],
    )
    duration = GaugeMetricFamily(
        "backup_last_duration_seconds", "How long the last successful backup of each type took.", labels=["type"]
    )
    latest = {
        kind: BackupRun.objects.filter(kind=kind, status=BackupRun.Status.SUCCEEDED, finished_at__isnull=False)
        .order_by("-finished_at")
        .values_list("started_at", "finished_at")
        .first()
        for kind in BackupKind.values
    }
    latest["tenant_export"] = (
        TenantExport.objects.filter(status=TenantExport.Status.SUCCEEDED, finished_at__isnull=False)
        .order_by("-finished_at")
        .values_list("started_at", "finished_at")
        .first()
    )
    for backup_type, row in sorted(latest.items()):
        if row is not None:
            started, finished = row
            last.add_metric([backup_type], finished.timestamp())
            duration.add_metric([backup_type], max(0.0, (finished - started).total_seconds()))
    return [last, duration]


def _replica_families() -> list:
    """The replica monitor's view (platform_site/replica_monitor.py) of this process: cheap, never cached."""
    from django.conf import settings

    if not settings.DATABASE_REPLICAS:
        return []
    from .replica_monitor import get_monitor

    snapshot = get_monitor().status()
    up = GaugeMetricFamily("platform_db_replica_up", "1 if the replica answered the last poll.", labels=["alias"])
    rotation = GaugeMetricFamily(
        "platform_db_replica_in_rotation", "1 if reads may be routed to the replica.", labels=["alias"]
    )
    replay = GaugeMetricFamily(
        "platform_db_replica_replay_lsn_bytes", "WAL position the replica has replayed.", labels=["alias"]
    )
    lag_bytes = GaugeMetricFamily(
        "platform_db_replica_lag_bytes", "WAL bytes the replica is behind the primary.", labels=["alias"]
    )
    lag_seconds = GaugeMetricFamily(
        "platform_db_replica_lag_seconds", "Seconds the replica has been behind the primary.", labels=["alias"]
    )
    for alias, status in snapshot.replicas.items():
        up.add_metric([alias], 1 if status.up else 0)
        rotation.add_metric([alias], 1 if status.in_rotation else 0)
        if status.replay_lsn is not None:
            replay.add_metric([alias], status.replay_lsn)
            lag_bytes.add_metric([alias], status.lag_bytes)
            lag_seconds.add_metric([alias], status.lag_seconds)
    primary_up = GaugeMetricFamily("platform_db_primary_up", "1 if the primary answered the last poll.")
    primary_up.add_metric([], 1 if snapshot.primary_up else 0)
    return [up, rotation, replay, lag_bytes, lag_seconds, primary_up]


def _tenant_usage_families() -> list:
    from django.conf import settings

    from tenants.usage import tenant_usage_list

    if not settings.METRICS_TENANT_USAGE_ENABLED:
        return []
    storage = GaugeMetricFamily("tenant_storage_bytes", "Bytes of the tenant's deployed assets.", labels=["tenant_id"])
    bandwidth = CounterMetricFamily(
        "tenant_bandwidth_bytes", "Bytes of the tenant's assets served by the origin.", labels=["tenant_id"]
    )
    requests = CounterMetricFamily(
        "tenant_requests", "Requests for the tenant's websites served by the origin.", labels=["tenant_id"]
    )
    deployments = GaugeMetricFamily(
        "tenant_deployments_succeeded", "Succeeded deployments of the tenant (all time).", labels=["tenant_id"]
    )
    cost = GaugeMetricFamily(
        "tenant_cost_dollars",
        "Cost attributed to the tenant at the configured unit prices (USAGE_PRICE_*).",
        labels=["tenant_id"],
    )
    for usage in tenant_usage_list(limit=settings.METRICS_TENANT_SERIES_LIMIT):
        labels = [str(usage.tenant_id)]
        storage.add_metric(labels, usage.storage_bytes)
        bandwidth.add_metric(labels, usage.bandwidth_bytes)
        requests.add_metric(labels, usage.requests)
        deployments.add_metric(labels, usage.deployments)
        cost.add_metric(labels, float(usage.cost.total))
    return [storage, bandwidth, requests, deployments, cost]


# Every source collected at scrape time, by name (the `source` label of metrics_source_up).
SCRAPE_TIME_SOURCES: dict[str, Callable[[], list]] = {
    "database": _database_families,
    "broker": _queue_families,
    "wal_archiver": _wal_archive_families,
    "backups": _backup_families,
    "tenant_usage": _tenant_usage_families,
    "replicas": _replica_families,
}
# Sources read from memory are cheap: collected on every scrape, so a rotation change shows at once.
UNCACHED_SOURCES = frozenset({"replicas"})


class PlatformStateCollector(Collector):
    """Collects SCRAPE_TIME_SOURCES; one failing source drops only its own metrics and sets its _up to 0."""

    def __init__(self):
        self.sources = {
            name: _Cached(self._guarded(name, fn), (lambda: 0.0) if name in UNCACHED_SOURCES else _cache_seconds)
            for name, fn in SCRAPE_TIME_SOURCES.items()
        }

    @staticmethod
    def _guarded(name: str, function: Callable[[], list]) -> Callable[[], list]:
        def collect() -> list:
            try:
                return [(True, function())]
            except Exception as exc:  # noqa: BLE001 - a scrape must not fail because one source is down
                logger.warning("metrics source %s unavailable: %s", name, exc.__class__.__name__)
                return [(False, [])]

        return collect

    def clear(self) -> None:
        for cached in self.sources.values():
            cached.clear()

    def collect(self):
        up = GaugeMetricFamily("metrics_source_up", "1 when the scrape-time source answered.", labels=["source"])
        for name, cached in self.sources.items():
            ok, families = cached()[0]
            up.add_metric([name], 1 if ok else 0)
            yield from families
        yield up


# Metric families the platform exports beyond prometheus_client objects and django-prometheus: the
# dashboards/rules test checks PromQL against these names.
SCRAPE_TIME_METRIC_NAMES = frozenset(
    {
        "tenants_total",
        "websites_total",
        "active_websites_total",
        "celery_queue_length",
        "wal_archived_total",
        "wal_archive_failures_total",
        "wal_archive_last_success_timestamp_seconds",
        "wal_archive_last_failure_timestamp_seconds",
        "pg_wal_bytes",
        "wal_ready_bytes",
        "backup_last_success_timestamp_seconds",
        "backup_last_duration_seconds",
        "tenant_storage_bytes",
        "tenant_bandwidth_bytes_total",
        "tenant_requests_total",
        "tenant_deployments_succeeded",
        "tenant_cost_dollars",
        "metrics_source_up",
        "platform_db_replica_up",
        "platform_db_replica_in_rotation",
        "platform_db_replica_replay_lsn_bytes",
        "platform_db_replica_lag_bytes",
        "platform_db_replica_lag_seconds",
        "platform_db_primary_up",
    }
)
