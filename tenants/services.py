"""Writes for tenants and websites, each in one transaction. Deployments: tenants/deployments.py."""

import logging

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.exceptions import ApplicationError, ConflictError
from webhooks.services import event_record

from .access import publish_tenant_access

# Deployments live in their own module; callers outside the app may keep using services.<name>.
from .deployments import (  # noqa: F401
    deployment_claim,
    deployment_create,
    deployment_event_record,
    deployment_execute,
    deployment_fail,
    deployment_rollback,
    deployment_start,
    deployment_succeed,
    deployments_sweep,
)
from .hostnames import normalize_hostnames
from .models import Hostname, Tenant, Tier, Website
from .selectors import hostnames_verified_elsewhere
from .verification import hostnames_cache_purge

logger = logging.getLogger(__name__)

# Upper bound of an operator's override of a tenant's API limit (requests a minute over all its keys).
MAX_REQUESTS_PER_MINUTE = 10_000_000


def _tenant_data(tenant: Tenant) -> dict:
    return {
        "tenant": {
            "id": str(tenant.pk), "slug": tenant.slug, "status": tenant.status,
            "suspended_at": tenant.suspended_at, "reason": tenant.suspension_reason,
        }
    }  # fmt: skip


def _website_data(website: Website) -> dict:
    hostnames = sorted(website.hostnames.values_list("hostname", flat=True))
    return {"website": {"id": str(website.pk), "name": website.name, "status": website.status, "hostnames": hostnames}}


def _invalid(field: str, error: ValidationError) -> ApplicationError:
    return ApplicationError("invalid", "The request is invalid.", fields={field: error.messages})


# --- tenants ----------------------------------------------------------------------------------


@transaction.atomic
def tenant_create(*, name: str, slug: str, tier: str = Tier.FREE) -> Tenant:
    if Tenant.objects.filter(slug=slug).exists():
        raise ConflictError("A tenant with this slug exists.", fields={"slug": ["This slug is taken."]})
    tenant = Tenant(name=name, slug=slug, tier=tier)
    tenant.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            tenant.save()
    except IntegrityError as exc:  # a concurrent create won the race
        raise ConflictError("A tenant with this slug exists.", fields={"slug": ["This slug is taken."]}) from exc
    logger.info("tenant created id=%s slug=%s tier=%s", tenant.pk, tenant.slug, tenant.tier)
    return tenant


@transaction.atomic
def tenant_update(*, tenant: Tenant, name: str | None = None, tier: str | None = None) -> Tenant:
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if name is not None:
        tenant.name = name
    if tier is not None:
        tenant.tier = tier
    tenant.full_clean(validate_unique=False, validate_constraints=False)
    tenant.save(update_fields=["name", "tier", "updated_at"])
    # The API gateway caches the tier's limit with the tenant's status.
    transaction.on_commit(lambda: publish_tenant_access(tenant))
    logger.info("tenant updated id=%s tier=%s", tenant.pk, tenant.tier)
    return tenant


@transaction.atomic
def tenant_limit_override(*, tenant: Tenant, requests_per_minute: int | None) -> Tenant:
    """Set (or clear, with None) the tenant's API limit over all its keys instead of its tier's.

    For operators only (audited by the caller); the gateway applies it from the next request.
    """
    if requests_per_minute is not None and not 1 <= requests_per_minute <= MAX_REQUESTS_PER_MINUTE:
        raise ApplicationError(
            "invalid", "The request is invalid.",
            fields={"rate_limit_override": [f"Between 1 and {MAX_REQUESTS_PER_MINUTE}, or null for the tier's."]},
        )  # fmt: skip
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    tenant.rate_limit_override = requests_per_minute
    tenant.save(update_fields=["rate_limit_override", "updated_at"])
    transaction.on_commit(lambda: publish_tenant_access(tenant))
    logger.info("tenant limit override id=%s requests_per_minute=%s", tenant.pk, requests_per_minute)
    return tenant


@transaction.atomic
def tenant_delete(*, tenant: Tenant) -> None:
    """Delete a tenant and everything it owns; its keys are refused from the next request on."""
    from apikeys.services import apikeys_forget_after_commit

    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    tenant_id = tenant.pk
    apikeys_forget_after_commit(tenant_id=tenant_id, keep=set())
    tenant.delete()
    # Gone, not suspended: the gateway's cached state of the tenant is replaced too.
    gone = Tenant(pk=tenant_id, tier=tenant.tier, status=Tenant.Status.SUSPENDED)
    transaction.on_commit(lambda: publish_tenant_access(gone))
    logger.info("tenant deleted id=%s slug=%s", tenant_id, tenant.slug)


@transaction.atomic
def tenant_suspend(*, tenant: Tenant, reason: str) -> Tenant:
    """Suspend a tenant: its API access stops as soon as this commits."""
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if tenant.status == Tenant.Status.SUSPENDED:
        raise ConflictError("The tenant is already suspended.", code="invalid_state")
    tenant.status = Tenant.Status.SUSPENDED
    tenant.suspended_at = timezone.now()
    tenant.suspension_reason = reason[:500]
    tenant.save(update_fields=["status", "suspended_at", "suspension_reason", "updated_at"])
    transaction.on_commit(lambda: publish_tenant_access(tenant))
    event_record(tenant=tenant, type="tenant.suspended", data=_tenant_data(tenant))
    logger.info("tenant suspended id=%s", tenant.pk)
    return tenant


@transaction.atomic
def tenant_reactivate(*, tenant: Tenant) -> Tenant:
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if tenant.status == Tenant.Status.ACTIVE:
        raise ConflictError("The tenant is already active.", code="invalid_state")
    tenant.status = Tenant.Status.ACTIVE
    tenant.suspended_at = None
    tenant.suspension_reason = ""
    tenant.save(update_fields=["status", "suspended_at", "suspension_reason", "updated_at"])
    transaction.on_commit(lambda: publish_tenant_access(tenant))
    event_record(tenant=tenant, type="tenant.reactivated", data=_tenant_data(tenant))
    logger.info("tenant reactivated id=%s", tenant.pk)
    return tenant


# --- websites ---------------------------------------------------------------------------------


def _set_hostnames(website: Website, hostnames: list[str]) -> None:
    """Make the website's hostnames exactly these. New ones start pending (served once verified, see
    tenants/verification.py); a hostname verified for another website is a 409 that names nobody."""
    try:
        normalized = normalize_hostnames(hostnames)
    except ValidationError as exc:
        raise _invalid("hostnames", exc) from exc
    taken = hostnames_verified_elsewhere(hostnames=normalized, website_id=website.pk)
    if taken:
        raise ConflictError(
            "A hostname is already in use.",
            fields={"hostnames": [f"{hostname!r} is already in use on the platform." for hostname in taken]},
        )
    removed = website.hostnames.exclude(hostname__in=normalized)
    unserved = list(removed.filter(status=Hostname.Status.VERIFIED).values_list("hostname", flat=True))
    removed.delete()
    existing = set(website.hostnames.values_list("hostname", flat=True))
    try:
        with transaction.atomic():
            Hostname.objects.bulk_create(
                [Hostname(website=website, hostname=h) for h in normalized if h not in existing]
            )
    except IntegrityError as exc:  # added concurrently to this website
        raise ConflictError("A hostname is already in use.", fields={"hostnames": ["Already in use."]}) from exc
    # The CDN may hold pages under a hostname the website no longer answers to.
    hostnames_cache_purge(website=website, hostnames=unserved, reason="hostname removed")


def _check_website_name(website: Website) -> None:
    clash = Website.objects.filter(tenant_id=website.tenant_id, name=website.name).exclude(pk=website.pk)
    if clash.exists():
        raise ConflictError("This tenant has a website with this name.", fields={"name": ["Name in use."]})


@transaction.atomic
def website_create(*, tenant: Tenant, name: str, hostnames: list[str] | None = None) -> Website:
    website = Website(tenant=tenant, name=name)
    website.full_clean(exclude=["active_deployment"], validate_unique=False, validate_constraints=False)
    _check_website_name(website)
    website.save()
    _set_hostnames(website, hostnames or [])
    event_record(tenant=tenant, type="website.created", data=_website_data(website))
    logger.info("website created id=%s tenant=%s", website.pk, tenant.pk)
    return website


@transaction.atomic
def website_update(
    *, website: Website, name: str | None = None, status: str | None = None, hostnames: list[str] | None = None
) -> Website:
    website = Website.objects.select_for_update().get(pk=website.pk)
    if name is not None:
        website.name = name
    if status is not None:
        website.status = status
    website.full_clean(exclude=["active_deployment"], validate_unique=False, validate_constraints=False)
    _check_website_name(website)
    website.save(update_fields=["name", "status", "updated_at"])
    if hostnames is not None:
        _set_hostnames(website, hostnames)
    event_record(tenant=website.tenant, type="website.updated", data=_website_data(website))
    logger.info("website updated id=%s", website.pk)
    return website


@transaction.atomic
def website_delete(*, website: Website) -> None:
    website_id = website.pk
    event_record(
        tenant=website.tenant, type="website.deleted", data={"website": {"id": str(website_id), "name": website.name}}
    )
    Website.objects.filter(pk=website_id).update(active_deployment=None)
    website.delete()
    logger.info("website deleted id=%s", website_id)
