"""The tenants' scrape-time metric sources (registered in TenantsConfig.ready; observability/collectors.py)."""

from operator import attrgetter

from django.conf import settings
from django.db.models import Count
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from observability.collectors import Series, labelled_families

from .models import Tenant, Website
from .usage import tenant_usage_list

DATABASE_METRIC_NAMES = frozenset({"tenants_total", "websites_total", "active_websites_total"})
USAGE_METRIC_NAMES = frozenset(
    {
        "tenant_storage_bytes",
        "tenant_bandwidth_bytes_total",
        "tenant_requests_total",
        "tenant_deployments_succeeded",
        "tenant_cost_dollars",
    }
)


def database_families() -> list:
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


# One sample per tenant, from its usage (tenants/usage.py).
USAGE_SERIES = (
    Series("tenant_storage_bytes", "Bytes of the tenant's deployed assets.", attrgetter("storage_bytes")),
    Series(
        "tenant_bandwidth_bytes",
        "Bytes of the tenant's assets served by the origin.",
        attrgetter("bandwidth_bytes"),
        CounterMetricFamily,
    ),
    Series(
        "tenant_requests",
        "Requests for the tenant's websites served by the origin.",
        attrgetter("requests"),
        CounterMetricFamily,
    ),
    Series(
        "tenant_deployments_succeeded", "Succeeded deployments of the tenant (all time).", attrgetter("deployments")
    ),
    Series(
        "tenant_cost_dollars",
        "Cost attributed to the tenant at the configured unit prices (USAGE_PRICE_*).",
        lambda usage: float(usage.cost.total),
    ),
)


def tenant_usage_families() -> list:
    if not settings.METRICS_TENANT_USAGE_ENABLED:
        return []
    usages = tenant_usage_list(limit=settings.METRICS_TENANT_SERIES_LIMIT)
    return labelled_families("tenant_id", USAGE_SERIES, ((str(usage.tenant_id), usage) for usage in usages))
