"""The webhooks' scrape-time metric source (registered in WebhooksConfig.ready; observability/collectors.py)."""

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily

from .models import Endpoint

BREAKER_METRIC_NAMES = frozenset({"webhook_endpoints_breaker_open"})
_NOT_CLOSED = (Endpoint.BreakerState.OPEN, Endpoint.BreakerState.HALF_OPEN)


def breaker_families() -> list:
    """Active endpoints whose circuit breaker is open (deliveries wait without a request) or half-open (a
    probe in flight); webhook_breaker_transitions_total counts the changes, this says how many are open now."""
    family = GaugeMetricFamily(
        "webhook_endpoints_breaker_open",
        "Active webhook endpoints whose circuit breaker is open or half-open (probing).",
        labels=["state"],
    )
    counts = dict(
        Endpoint.objects.filter(is_active=True, breaker_state__in=_NOT_CLOSED)
        .values_list("breaker_state")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for state in _NOT_CLOSED:
        family.add_metric([state], counts.get(state, 0))
    return [family]
