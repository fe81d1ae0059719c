"""The single place that decides whether a tenant may use the platform.

`publish_tenant_access` runs after every change of a tenant's status; everything that grants access
(the API gateway, key caches) reads `tenant_is_active`, so a suspension cuts access at once in every
process: the status lives in the shared cache, refreshed from the database on a miss.
"""

import logging

from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS

logger = logging.getLogger(__name__)

STATUS_CACHE_TIMEOUT = 300


def _key(tenant_id) -> str:
    return f"tenant:status:{tenant_id}"


def publish_tenant_access(tenant) -> None:
    """Write the tenant's status where every process looks; called after commit by the services."""
    try:
        cache.set(_key(tenant.pk), tenant.status, timeout=STATUS_CACHE_TIMEOUT)
    except Exception:  # a cache outage must not undo the database change; readers fall back to it
        logger.warning("could not publish status of tenant %s; readers will use the database", tenant.pk)
    # Capabilities that cache access per tenant are called from here.
    from apikeys.gateway.decision import publish_tenant

    try:
        publish_tenant(tenant)
    except Exception:
        # The API gateway would keep the old status until its record expires: loud, not silent.
        logger.error("could not publish status of tenant %s to the API gateway", tenant.pk)


def tenant_is_active(tenant_id) -> bool:
    try:
        status = cache.get(_key(tenant_id))
    except Exception:
        status = None
    if status is None:
        from .models import Tenant

        # The primary: a suspension must count at once, whatever a replica's lag.
        status = Tenant.objects.using(DEFAULT_DB_ALIAS).filter(pk=tenant_id).values_list("status", flat=True).first()
        if status is None:
            return False
        try:
            cache.set(_key(tenant_id), status, timeout=STATUS_CACHE_TIMEOUT)
        except Exception:
            logger.debug("cache unavailable while caching tenant status")
    return status == "active"
