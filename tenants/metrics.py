"""The tenants' scrape-time metric sources (registered in TenantsConfig.ready; observability/collectors.py)."""

from django.conf import settings
from django.db.models import Count
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

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


def tenant_usage_families() -> list:
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
