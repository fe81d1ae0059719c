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
| webhook_endpoints_breaker_open (scrape)  | state                       | 2                                   |
| celery_queue_length                      | queue                       | celery QUEUES (4)                   |
| celery_tasks_total                       | task, outcome               | registered tasks x 4                |
| platform_task_enqueue_failures_total     | task                        | registered tasks                    |
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
written to PROMETHEUS_MULTIPROC_DIR and summed at scrape time (observability/endpoint.py).
State that must survive a process restart or is the same for every process (database counts, queue
depth, last backup, WAL archiver) is not kept in process memory at all: the web /metrics collects it at
scrape time from its source of truth, cached a few seconds (observability/collectors.py). Each app
registers its own sources there from its AppConfig.ready (tenants/metrics.py, backups/metrics.py,
dbrouting/metrics.py), so this package never imports a domain app.
"""

import functools
import logging
import time
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

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


TASK_ENQUEUE_FAILURES = Counter(
    "platform_task_enqueue_failures",
    "Tasks that could not be queued because the broker refused them (their sweeper queues them again).",
    ["task"],
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


@functools.lru_cache(maxsize=16)
def _webhook_delivery_children(outcome: str):
    # Called per attempt on the delivery hot path: labels() takes a lock and builds a key every time.
    outcome = _bounded(outcome, WEBHOOK_OUTCOMES)
    return WEBHOOK_DELIVERIES.labels(outcome=outcome), WEBHOOK_DELIVERY_DURATION.labels(outcome=outcome)


def record_webhook_delivery(*, outcome: str, seconds: float) -> None:
    """One webhook delivery attempt finished (webhooks.sending). outcome: WEBHOOK_OUTCOMES."""
    deliveries, duration = _webhook_delivery_children(outcome)
    deliveries.inc()
    duration.observe(seconds)


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


def record_origin_bytes_served(*, nbytes: int) -> None:
    """The origin answered one request for a tenant's website with nbytes of body (the tenant's own
    share is counted by tenants.usage.origin_served, which calls this)."""
    ORIGIN_BYTES_SERVED.inc(nbytes)


def record_backup_run(*, kind: str, status: str) -> None:
    """A backup operation (backup, verification, export) finished with status."""
    BACKUP_RUNS.labels(kind=kind, status=status).inc()


def record_task_enqueue_failure(*, task: str) -> None:
    """The broker refused a task (core.enqueue); task: its registered name (a bounded set)."""
    TASK_ENQUEUE_FAILURES.labels(task=task).inc()


def record_celery_task(*, task: str, outcome: str) -> None:
    CELERY_TASKS.labels(task=task, outcome=_bounded(outcome, TASK_OUTCOMES)).inc()
