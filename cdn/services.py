"""Writes for CDN invalidations as the platform asks for them: a request, a deployment's purge, a website's CDN
settings, and the event of a finished invalidation. Sending them to the provider is in cdn/provider_requests.py."""

import logging

from django.conf import settings
from django.db import transaction

from core.enqueue import enqueue_on_commit
from core.exceptions import ApplicationError
from tenants.hostnames import preview_host
from tenants.models import Tenant

from .backends import cdn_backends
from .backends.base import CdnConfigurationError, Site
from .batching import collapse_paths, normalize_path
from .models import Invalidation
from .paths import InvalidPath, changed_purge_paths

EVENT_TYPES = {
    Invalidation.Status.COMPLETED: "cdn.invalidation.completed",
    Invalidation.Status.FAILED: "cdn.invalidation.failed",
}


def invalidation_event_record(*, invalidation: Invalidation) -> None:
    """Announce a finished invalidation (cdn.invalidation.completed|failed) to the tenant's webhooks,
    in the caller's transaction. Called once per invalidation, where its status becomes final."""
    from tenants.models import Website
    from webhooks.services import event_record

    tenant_id = Website.objects.values_list("tenant_id", flat=True).get(pk=invalidation.website_id)
    event_record(
        tenant=Tenant(pk=tenant_id),
        type=EVENT_TYPES[invalidation.status],
        data={
            "invalidation": {
                "id": str(invalidation.pk), "website_id": str(invalidation.website_id), "backend": invalidation.backend,
                "paths": invalidation.paths[:100], "error": invalidation.error,
            }
        },
    )  # fmt: skip


logger = logging.getLogger(__name__)

WHOLE_SITE = "/*"
MAX_PATHS_PER_CALL = 20_000


def coalesce_seconds() -> float:
    """CDN_COALESCE_SECONDS: how long a website's invalidation requests wait to be sent as one."""
    return float(getattr(settings, "CDN_COALESCE_SECONDS", 2.0))


def site_for(website, *, former_hostnames: list[str] | tuple[str, ...] = ()) -> Site:
    """The website as backends purge it: the hostnames it is served under (verified ones) plus any it
    stopped answering to that a cache may still hold, and its preview host."""
    from tenants.selectors import website_served_hostnames

    hostnames = sorted({*website_served_hostnames(website=website), *former_hostnames})
    return Site(
        website_id=str(website.pk), hostnames=tuple(hostnames), config=dict(website.cdn_config or {}),
        preview_host=preview_host(website.pk),
    )  # fmt: skip


def invalidation_request(
    *, website, paths: list[str] | None = None, reason: str = "", hostnames: list[str] | None = None
) -> Invalidation:
    """Ask for paths of a website to be purged (all of it when paths is empty); every call is its own
    record, whose id the caller may keep. `hostnames`: names the website no longer answers to, purged too.

    Requests for the same website within CDN_COALESCE_SECONDS are sent together by one flush (a task
    queued after commit); call inside the caller's transaction to purge only what was committed.
    """
    paths = list(paths or [WHOLE_SITE])
    if len(paths) > MAX_PATHS_PER_CALL:
        raise ApplicationError(
            "invalid", "The request is invalid.", fields={"paths": [f"At most {MAX_PATHS_PER_CALL}."]}
        )
    normalized, errors = [], []
    for path in paths:
        try:
            normalized.append(normalize_path(path))
        except InvalidPath as exc:
            errors.append(str(exc))
    if errors:
        raise ApplicationError("invalid", "The request is invalid.", fields={"paths": errors[:20]})
    normalized = list(dict.fromkeys(normalized))
    try:
        cdn_backends[website.cdn_backend]
    except CdnConfigurationError as exc:
        raise ApplicationError("cdn_not_configured", str(exc), fields={"cdn_backend": [str(exc)]}) from exc

    with transaction.atomic():
        invalidation = Invalidation.objects.create(
            website=website, backend=website.cdn_backend, paths=normalized, hostnames=list(hostnames or []),
            reason=reason[:200],
        )  # fmt: skip
        website_id = str(website.pk)
        # One flush per window does the work; the others find nothing left to plan (cheap, idempotent).
        from .tasks import invalidation_flush_task

        enqueue_on_commit(invalidation_flush_task, website_id, countdown=coalesce_seconds())
    logger.info("invalidation requested id=%s website=%s paths=%s", invalidation.pk, website.pk, len(normalized))
    return invalidation


def deployment_purge(*, website, previous: dict | None, current: dict, reason: str) -> Invalidation | None:
    """Purge what changed between two deployments' manifests (called inside the activation's transaction).
    A misconfigured CDN must not block serving the new version: the refusal is logged, not raised."""
    changed = changed_purge_paths(previous=previous, current=current)
    if not changed:
        return None
    if len(changed) > MAX_PATHS_PER_CALL:  # a huge deploy: purge crowded directories as wildcards
        changed = collapse_paths(changed, threshold=100)
        changed = changed if len(changed) <= MAX_PATHS_PER_CALL else ["/*"]
    try:
        return invalidation_request(website=website, paths=changed, reason=reason)
    except ApplicationError as exc:
        logger.warning("website %s: CDN invalidation for %s not requested: %s", website.pk, reason, exc.message)
        return None


@transaction.atomic
def website_cdn_update(
    *, website, cdn_backend: str | None = None, cdn_config: dict | None = None, cache_overrides: dict | None = None
):
    """Set which CDN backend serves a website, its provider ids and its cache-strategy overrides."""
    from tenants.models import Website

    from .policy import validate_overrides

    website = Website.objects.select_for_update().get(pk=website.pk)
    if cdn_backend is not None:
        if cdn_backend not in settings.CDN_BACKENDS:
            raise ApplicationError("invalid", "The request is invalid.",
                                   fields={"cdn_backend": [f"{cdn_backend!r} is not in CDN_BACKENDS."]})  # fmt: skip
        website.cdn_backend = cdn_backend
    if cdn_config is not None:
        website.cdn_config = cdn_config
    if cache_overrides is not None:
        try:
            website.cache_overrides = validate_overrides(cache_overrides)
        except ValueError as exc:
            raise ApplicationError(
                "invalid", "The request is invalid.", fields={"cache_overrides": [str(exc)]}
            ) from exc
    website.save(update_fields=["cdn_backend", "cdn_config", "cache_overrides", "updated_at"])
    logger.info("website cdn updated id=%s backend=%s", website.pk, website.cdn_backend)
    return website
