from django.db.models import QuerySet

from .models import Delivery, Endpoint


def endpoint_list(*, tenant=None) -> QuerySet[Endpoint]:
    """A tenant's endpoints; every tenant's for an operator (tenant None)."""
    queryset = Endpoint.objects.select_related("tenant")
    return queryset if tenant is None else queryset.filter(tenant=tenant)


def delivery_list(*, tenant=None, endpoint: Endpoint | None = None) -> QuerySet[Delivery]:
    queryset = Delivery.objects.select_related("event").prefetch_related("attempts")
    if tenant is not None:
        queryset = queryset.filter(endpoint__tenant=tenant)
    if endpoint is not None:
        queryset = queryset.filter(endpoint=endpoint)
    return queryset


def tenant_ids_subscribed(*, event_type: str) -> set:
    """Tenants with an active endpoint subscribed to event_type: platform-wide events (a tenant export
    covers every tenant) are recorded only for them, in one query."""
    from .catalogue import subscribed

    rows = Endpoint.objects.filter(is_active=True).values_list("tenant_id", "event_types")
    return {tenant_id for tenant_id, event_types in rows if subscribed(event_types, event_type)}
