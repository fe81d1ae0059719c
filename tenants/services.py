"""Writes for tenants, websites and deployments. Each runs in one transaction."""

import logging

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from platform_site.exceptions import ApplicationError, ConflictError
from webhooks.services import event_record

from .access import publish_tenant_access
from .hostnames import normalize_hostnames
from .models import Deployment, Hostname, Tenant, Tier, Website

logger = logging.getLogger(__name__)


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


def _deployment_data(deployment: Deployment) -> dict:
    return {
        "deployment": {
            "id": str(deployment.pk), "website_id": str(deployment.website_id), "number": deployment.number,
            "status": deployment.status, "trigger": deployment.trigger, "started_at": deployment.started_at,
            "finished_at": deployment.finished_at, "error": deployment.error,
        }
    }  # fmt: skip


def _deployment_event(deployment: Deployment, type_: str) -> None:
    tenant_id = Website.objects.values_list("tenant_id", flat=True).get(pk=deployment.website_id)
    event_record(tenant=Tenant(pk=tenant_id), type=type_, data=_deployment_data(deployment))


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
    logger.info("tenant updated id=%s tier=%s", tenant.pk, tenant.tier)
    return tenant


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
    try:
        normalized = normalize_hostnames(hostnames)
    except ValidationError as exc:
        raise _invalid("hostnames", exc) from exc
    taken = list(
        Hostname.objects.filter(hostname__in=normalized).exclude(website=website).values_list("hostname", flat=True)
    )
    if taken:
        raise ConflictError(
            "A hostname is already in use.",
            fields={"hostnames": [f"{hostname!r} is already used by another website." for hostname in taken]},
        )
    website.hostnames.exclude(hostname__in=normalized).delete()
    existing = set(website.hostnames.values_list("hostname", flat=True))
    try:
        with transaction.atomic():
            Hostname.objects.bulk_create(
                [Hostname(website=website, hostname=h) for h in normalized if h not in existing]
            )
    except IntegrityError as exc:  # claimed concurrently by another website
        raise ConflictError("A hostname is already in use.", fields={"hostnames": ["Already in use."]}) from exc


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


# --- deployments ------------------------------------------------------------------------------


@transaction.atomic
def deployment_create(
    *, website: Website, trigger: str = Deployment.Trigger.API, description: str = "", run: bool = True
) -> Deployment:
    """Create the website's next deployment (numbered 1, 2, ...) and queue it to run after commit."""
    # The website row lock serialises numbering, so two concurrent deploys never share a number.
    website = Website.objects.select_for_update().get(pk=website.pk)
    if website.status != Website.Status.ACTIVE:
        raise ConflictError("The website is disabled.", code="invalid_state")
    last = website.deployments.aggregate(last=Max("number"))["last"] or 0
    deployment = Deployment(website=website, number=last + 1, trigger=trigger, description=description)
    deployment.full_clean(validate_unique=False, validate_constraints=False)
    deployment.save()
    if run:
        from .tasks import deployment_run

        deployment_id = str(deployment.pk)
        transaction.on_commit(lambda: deployment_run.delay(deployment_id))
    logger.info("deployment created id=%s website=%s number=%s", deployment.pk, website.pk, deployment.number)
    return deployment


def _transition(deployment: Deployment, allowed_from: set[str]) -> Deployment:
    deployment = Deployment.objects.select_for_update().get(pk=deployment.pk)
    if deployment.status not in allowed_from:
        raise ConflictError(
            f"Deployment #{deployment.number} is {deployment.status}; cannot change it now.", code="invalid_state"
        )
    return deployment


@transaction.atomic
def deployment_start(*, deployment: Deployment) -> Deployment:
    deployment = _transition(deployment, {Deployment.Status.PENDING})
    deployment.status = Deployment.Status.RUNNING
    deployment.started_at = timezone.now()
    deployment.save(update_fields=["status", "started_at"])
    _deployment_event(deployment, "deployment.started")
    return deployment


@transaction.atomic
def deployment_succeed(*, deployment: Deployment) -> Deployment:
    """Mark a running deployment succeeded and make it the one its website serves."""
    deployment = _transition(deployment, {Deployment.Status.RUNNING})
    deployment.status = Deployment.Status.SUCCEEDED
    deployment.finished_at = timezone.now()
    deployment.save(update_fields=["status", "finished_at"])
    Website.objects.filter(pk=deployment.website_id).update(active_deployment=deployment, updated_at=timezone.now())
    _deployment_event(deployment, "deployment.succeeded")
    logger.info("deployment succeeded id=%s", deployment.pk)
    return deployment


@transaction.atomic
def deployment_fail(*, deployment: Deployment, error: str) -> Deployment:
    """Mark a deployment failed; the website keeps serving its previous deployment."""
    deployment = _transition(deployment, {Deployment.Status.PENDING, Deployment.Status.RUNNING})
    now = timezone.now()
    deployment.status = Deployment.Status.FAILED
    deployment.started_at = deployment.started_at or now
    deployment.finished_at = now
    deployment.error = error[:10_000]
    deployment.save(update_fields=["status", "started_at", "finished_at", "error"])
    _deployment_event(deployment, "deployment.failed")
    logger.info("deployment failed id=%s", deployment.pk)
    return deployment


def deployment_execute(*, deployment: Deployment) -> Deployment:
    """Run a pending deployment through its lifecycle: start, then succeed (activating it).

    Content (bundle upload, object storage, CDN invalidation) is added by the deployments capability.
    """
    deployment = deployment_start(deployment=deployment)
    return deployment_succeed(deployment=deployment)
