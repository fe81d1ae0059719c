"""Per-tenant usage (storage, bandwidth, requests, deployments) and the cost attributed to it.

- Bandwidth and requests are cumulative counters in the shared cache (Redis in real mode), incremented by
  the origin through `usage_record` (one round trip per call; never in the database's write path). They
  behave like Prometheus counters: the tenant dashboard takes `increase()` over the period it shows.
- Storage is the size of the deployed assets each website serves: the sum over the tenant's websites of
  their active deployment's files (Deployment.total_bytes; settings.USAGE_DEPLOYMENT_SIZE_FIELD).
- Deployments: succeeded deployments, from the database.
- Cost: each quantity times its unit price from settings (USAGE_PRICE_*), in dollars, as Decimal.
"""

import logging
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Count, Q, Sum

from core.configuration import FromSettings, setting
from observability import metrics

from .models import Deployment, Tenant, Website

logger = logging.getLogger(__name__)

GIB = 1024**3
# Costs are rounded to a hundredth of a cent (four decimal places of a dollar).
COST_PRECISION = Decimal("0.0001")


def _key(kind: str, tenant_id) -> str:
    return f"usage:{kind}:{tenant_id}"


def _incr(key: str, amount: int) -> None:
    try:
        cache.incr(key, amount)
    except ValueError:  # first use of the key: create it, or add to the one a concurrent caller created
        if not cache.add(key, amount, timeout=None):
            cache.incr(key, amount)


def _redis_client():
    """The raw client behind a django-redis cache (one pipelined round trip), else None."""
    client = getattr(cache, "client", None)
    get_client = getattr(client, "get_client", None)
    return get_client(write=True) if get_client else None


def origin_served(*, tenant_id, nbytes: int) -> None:
    """The origin answered one request for a tenant's website with nbytes of body: the platform counter
    plus the tenant's usage (one Redis round trip)."""
    metrics.record_origin_bytes_served(nbytes=nbytes)
    usage_record(tenant_id=tenant_id, requests=1, bytes_served=nbytes)


def usage_record(*, tenant_id, requests: int = 0, bytes_served: int = 0) -> None:
    """Count origin traffic for a tenant. A cache outage loses the increment, never the response."""
    try:
        redis_client = _redis_client()
        if redis_client is not None:
            # django-redis stores integers unpickled, so INCRBY on its key is what cache.incr does.
            with redis_client.pipeline(transaction=False) as pipe:
                if requests:
                    pipe.incrby(cache.make_key(_key("requests", tenant_id)), requests)
                if bytes_served:
                    pipe.incrby(cache.make_key(_key("bandwidth", tenant_id)), bytes_served)
                pipe.execute()
            return
        if requests:
            _incr(_key("requests", tenant_id), requests)
        if bytes_served:
            _incr(_key("bandwidth", tenant_id), bytes_served)
    except Exception:  # noqa: BLE001 - usage accounting must not break serving
        logger.warning("usage counters unavailable; increment for tenant %s lost", tenant_id)


@dataclass(frozen=True)
class UnitPrices(FromSettings):
    storage_gib_month: Decimal = setting("USAGE_PRICE_STORAGE_GIB_MONTH")
    bandwidth_gib: Decimal = setting("USAGE_PRICE_BANDWIDTH_GIB")
    requests_million: Decimal = setting("USAGE_PRICE_REQUESTS_MILLION")
    deployment: Decimal = setting("USAGE_PRICE_DEPLOYMENT")


@dataclass(frozen=True)
class Cost:
    storage: Decimal
    bandwidth: Decimal
    requests: Decimal
    deployments: Decimal

    @property
    def total(self) -> Decimal:
        return self.storage + self.bandwidth + self.requests + self.deployments


@dataclass(frozen=True)
class TenantUsage:
    tenant_id: uuid.UUID
    slug: str
    tier: str
    storage_bytes: int
    bandwidth_bytes: int
    requests: int
    deployments: int
    prices: UnitPrices = field(repr=False)

    @property
    def cost(self) -> Cost:
        return usage_cost(usage=self, prices=self.prices)


def _money(value: Decimal) -> Decimal:
    return value.quantize(COST_PRECISION, rounding=ROUND_HALF_UP)


def usage_cost(*, usage: TenantUsage, prices: UnitPrices) -> Cost:
    """Cost of one month of storage at the current size plus the traffic and deployments counted."""
    return Cost(
        storage=_money(Decimal(usage.storage_bytes) / GIB * prices.storage_gib_month),
        bandwidth=_money(Decimal(usage.bandwidth_bytes) / GIB * prices.bandwidth_gib),
        requests=_money(Decimal(usage.requests) / 1_000_000 * prices.requests_million),
        deployments=_money(usage.deployments * prices.deployment),
    )


def _storage_by_tenant(tenant_ids: list) -> dict:
    size_field = settings.USAGE_DEPLOYMENT_SIZE_FIELD
    try:
        Deployment._meta.get_field(size_field)
    except FieldDoesNotExist:
        return {}
    rows = (
        Website.objects.filter(tenant_id__in=tenant_ids, active_deployment__isnull=False)
        .values("tenant_id")
        .annotate(total=Sum(f"active_deployment__{size_field}"))
        .order_by()
    )
    return {row["tenant_id"]: int(row["total"] or 0) for row in rows}


def tenant_usage_list(*, tenant_ids: list | None = None, limit: int | None = None) -> list[TenantUsage]:
    """Usage of the given tenants (all, ordered by slug, at most `limit`): three queries and one cache read."""
    tenants = Tenant.objects.order_by("slug").only("id", "slug", "tier")
    if tenant_ids is not None:
        tenants = tenants.filter(pk__in=tenant_ids)
    tenants = list(tenants[:limit] if limit else tenants)
    ids = [tenant.pk for tenant in tenants]
    storage = _storage_by_tenant(ids)
    deployments = dict(
        Website.objects.filter(tenant_id__in=ids)
        .values("tenant_id")
        .annotate(n=Count("deployments", filter=Q(deployments__status=Deployment.Status.SUCCEEDED)))
        .values_list("tenant_id", "n")
        .order_by()
    )
    keys = [_key(kind, tenant_id) for tenant_id in ids for kind in ("requests", "bandwidth")]
    try:
        counters = cache.get_many(keys)
    except Exception:  # noqa: BLE001 - show what the database knows; traffic reads as 0
        logger.warning("usage counters unavailable; traffic reported as 0")
        counters = {}
    prices = UnitPrices.from_settings()
    return [
        TenantUsage(
            tenant_id=tenant.pk,
            slug=tenant.slug,
            tier=tenant.tier,
            storage_bytes=storage.get(tenant.pk, 0),
            bandwidth_bytes=int(counters.get(_key("bandwidth", tenant.pk), 0)),
            requests=int(counters.get(_key("requests", tenant.pk), 0)),
            deployments=deployments.get(tenant.pk, 0),
            prices=prices,
        )
        for tenant in tenants
    ]


def tenant_usage_get(*, tenant: Tenant) -> TenantUsage:
    return tenant_usage_list(tenant_ids=[tenant.pk])[0]
