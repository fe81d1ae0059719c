"""Two tenants with one of everything each, and a key of tenant A holding every scope."""

from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Objects:
    """The ids of one tenant's objects, as strings (URL and body templates format with them)."""

    tenant: str
    website: str
    deployment: str
    endpoint: str
    delivery: str
    event: str
    key: str
    invalidation: str
    hostname: str
    website_name: str


def tenant_with_everything(slug: str, *, tier: str = "professional") -> Objects:
    from django.utils import timezone

    from apikeys import services as apikey_services
    from apikeys.scopes import SCOPES
    from cdn import services as cdn_services
    from tenants import services
    from tenants.bundles import bundle_build
    from webhooks import services as webhook_services
    from webhooks.models import Delivery

    tenant = services.tenant_create(name=f"Tenant {slug}", slug=slug, tier=tier)
    website = services.website_create(tenant=tenant, name=f"Site of {slug}", hostnames=[f"www.{slug}.test"])
    deployment = services.deployment_create(website=website, bundle=bundle_build({"index.html": slug}), run=False)
    endpoint, _ = webhook_services.endpoint_create(tenant=tenant, url="http://127.0.0.1:9/hook", event_types=["*"])
    event = webhook_services.event_record(tenant=tenant, type="website.created", data={"website": {"id": "x"}})
    webhook_services.event_fan_out(event_id=event.pk)
    delivery = Delivery.objects.get(endpoint=endpoint, event=event)
    # A failed delivery, so bulk replay and redeliver have something to act on.
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED, finished_at=timezone.now())
    api_key, _ = apikey_services.apikey_create(tenant=tenant, name=f"key of {slug}", scopes=list(SCOPES))
    invalidation = cdn_services.invalidation_request(website=website, paths=["/"], reason="fixture")
    return Objects(
        tenant=str(tenant.pk), website=str(website.pk), deployment=str(deployment.pk), endpoint=str(endpoint.pk),
        delivery=str(delivery.pk), event=str(event.pk), key=str(api_key.pk), invalidation=str(invalidation.pk),
        hostname=f"www.{slug}.test", website_name=website.name,
    )  # fmt: skip


@pytest.fixture
def hardening_webhooks(settings):
    """Endpoints on loopback are allowed, so creating one reaches the tenant checks."""
    settings.WEBHOOKS_ALLOW_HTTP = True
    settings.WEBHOOKS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    return settings


@pytest.fixture
def fresh_cache():
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def two_tenants(db, hardening_webhooks, fresh_cache, django_capture_on_commit_callbacks):
    """(a, b, raw key of A with every scope). Nothing is queued: on-commit callbacks are dropped."""
    from apikeys import services as apikey_services
    from apikeys.scopes import SCOPES
    from tenants.models import Tenant

    a = tenant_with_everything("tenant-a")
    b = tenant_with_everything("tenant-b")
    with django_capture_on_commit_callbacks(execute=True):
        # Published after commit: the gateway's key cache must know it.
        _, raw_key = apikey_services.apikey_create(
            tenant=Tenant.objects.get(pk=a.tenant), name="matrix", scopes=list(SCOPES)
        )
    return a, b, raw_key
