from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from . import signing
from .models import Delivery, Endpoint, SignatureScheme


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


def endpoint_previous_public_key(endpoint: Endpoint, *, now: datetime | None = None) -> str | None:
    """The previous v1a public key while it still signs (a rotation's grace period), else None."""
    expires_at = endpoint.previous_secret_expires_at
    if endpoint.previous_public_key and expires_at and expires_at > (now or timezone.now()):
        return endpoint.previous_public_key
    return None


def signing_public_keys(*, tenant=None, endpoint_id=None) -> list[dict]:
    """The v1a public keys that sign deliveries now, as JWKs (RFC 8037) with their endpoint: each endpoint's
    current key and, during a rotation's grace period, its previous one with the time it stops signing."""
    now = timezone.now()
    # A v1a key rotated to a v1 secret still signs (and is listed) until its grace period ends.
    endpoints = endpoint_list(tenant=tenant).filter(
        Q(signature_scheme=SignatureScheme.V1A) | (~Q(previous_public_key="") & Q(previous_secret_expires_at__gt=now))
    )
    if endpoint_id is not None:
        endpoints = endpoints.filter(pk=endpoint_id)
    keys = []
    for endpoint in endpoints.order_by("created_at", "pk"):
        if endpoint.public_key:
            keys.append({**signing.jwk(endpoint.public_key), "endpoint": str(endpoint.pk), "status": "current",
                         "public_key": endpoint.public_key, "expires_at": None})  # fmt: skip
        previous = endpoint_previous_public_key(endpoint, now=now)
        if previous:
            keys.append({**signing.jwk(previous), "endpoint": str(endpoint.pk), "status": "previous",
                         "public_key": previous, "expires_at": endpoint.previous_secret_expires_at})  # fmt: skip
    return keys
