"""/metrics: one scrape of everything this web deployment exports.

- Counters/histograms of every gunicorn worker (multiprocess mode, PROMETHEUS_MULTIPROC_DIR) or of this
  process (single process, e.g. `runserver`), including django-prometheus' request/DB/cache metrics.
- The scrape-time state (database counts, queue depth, WAL archiver, last backups, per-tenant usage),
  collected once per scrape by `PlatformStateCollector`; Celery workers' own endpoint never includes it,
  so `sum()` across jobs counts it once.

Access: public in embedded mode; in real mode only with `Authorization: Bearer <METRICS_TOKEN>` (and
404, as if absent, when METRICS_TOKEN is not set). In embedded mode a METRICS_TOKEN, if set, is required
too.
"""

import hmac

import prometheus_client
from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CollectorRegistry, generate_latest, multiprocess

from core.exceptions import error_response

from .collectors import PlatformStateCollector
from .multiprocess import multiprocess_dir

platform_state = CollectorRegistry(auto_describe=False)
PLATFORM_STATE_COLLECTOR = PlatformStateCollector()
platform_state.register(PLATFORM_STATE_COLLECTOR)


def process_metrics_registry() -> CollectorRegistry:
    """Every worker process's metrics in multiprocess mode, else this process's default registry."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return prometheus_client.REGISTRY


def token_allows(authorization: str, token: str) -> bool:
    scheme, _, credentials = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), token.encode())


def metrics_access_error(request):
    """None when the request may read /metrics, else the response to send."""
    token = settings.METRICS_TOKEN
    if not token:
        if settings.REAL_MODE:
            return error_response("not_found", "Not found.", 404)
        return None
    if not token_allows(request.headers.get("Authorization", ""), token):
        response = error_response("not_authenticated", "A valid metrics bearer token is required.", 401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return None


@never_cache
def metrics(request):
    refused = metrics_access_error(request)
    if refused is not None:
        return refused
    body = generate_latest(process_metrics_registry()) + generate_latest(platform_state)
    return HttpResponse(body, content_type=prometheus_client.CONTENT_TYPE_LATEST)
