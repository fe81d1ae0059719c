"""Writes for CDN invalidations: request (coalescing), flush (batching + provider limits), poll."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from platform_site import metrics
from platform_site.exceptions import ApplicationError
from tenants.hostnames import preview_host
from tenants.models import Tenant

from .backends import cdn_backends
from .backends.base import CdnBackend, CdnConfigurationError, CdnError, CdnThrottled, Site
from .batching import normalize_path, plan_requests
from .models import Invalidation

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


def _window_seconds() -> float:
    return float(getattr(settings, "CDN_COALESCE_SECONDS", 2.0))


def _threshold() -> int | None:
    return getattr(settings, "CDN_WILDCARD_THRESHOLD", 100)


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
    """Ask for paths of a website to be purged (all of it when paths is empty).

    Requests for the same website within CDN_COALESCE_SECONDS coalesce into one pending record, which
    a task flushes when the window closes; call inside the caller's transaction to purge only what
    was committed. `hostnames`: names the website no longer answers to, purged too.
    """
    hostnames = list(hostnames or [])
    paths = list(paths or [WHOLE_SITE])
    if len(paths) > MAX_PATHS_PER_CALL:
        raise ApplicationError(
            "invalid", "The request is invalid.", fields={"paths": [f"At most {MAX_PATHS_PER_CALL}."]}
        )
    try:
        normalized = list(dict.fromkeys(normalize_path(path) for path in paths))
    except ValueError as exc:
        raise ApplicationError("invalid", "The request is invalid.", fields={"paths": [str(exc)]}) from exc
    try:
        cdn_backends[website.cdn_backend]
    except CdnConfigurationError as exc:
        raise ApplicationError("cdn_not_configured", str(exc), fields={"cdn_backend": [str(exc)]}) from exc

    with transaction.atomic():
        pending = (
            Invalidation.objects.select_for_update()
            .filter(website=website, status=Invalidation.Status.PENDING, backend=website.cdn_backend, submitted_at=None)
            .order_by("requested_at")
            .first()
        )
        if pending is not None:
            pending.paths = list(dict.fromkeys([*pending.paths, *normalized]))
            pending.hostnames = list(dict.fromkeys([*pending.hostnames, *hostnames]))
            if reason and reason not in pending.reason:
                pending.reason = f"{pending.reason}; {reason}"[:200] if pending.reason else reason[:200]
            pending.save(update_fields=["paths", "hostnames", "reason"])
            logger.info("invalidation coalesced id=%s website=%s paths=%s", pending.pk, website.pk, len(normalized))
            return pending
        invalidation = Invalidation.objects.create(
            website=website, backend=website.cdn_backend, paths=normalized, hostnames=hostnames, reason=reason[:200]
        )
        website_id = str(website.pk)
        transaction.on_commit(lambda: _enqueue_flush(website_id, countdown=_window_seconds()))
    logger.info("invalidation requested id=%s website=%s paths=%s", invalidation.pk, website.pk, len(normalized))
    return invalidation


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


def _enqueue_flush(website_id: str, *, countdown: float) -> None:
    from .tasks import invalidation_flush

    invalidation_flush.apply_async((website_id,), countdown=countdown)


def invalidation_flush(*, website_id) -> list[Invalidation]:
    """Merge a website's pending requests, plan provider requests and send them.

    Raises CdnThrottled when some requests must wait for provider capacity (the task retries).
    """
    from tenants.models import Website

    with transaction.atomic():
        pending = list(
            Invalidation.objects.select_for_update(skip_locked=True)
            .filter(website_id=website_id, status=Invalidation.Status.PENDING)
            .order_by("requested_at")
        )
        if not pending:
            return []
        website = Website.objects.get(pk=website_id)
        former_hostnames = list(dict.fromkeys(host for row in pending for host in row.hostnames))
        by_backend: dict[str, list[Invalidation]] = {}
        for row in pending:
            by_backend.setdefault(row.backend, []).append(row)
        planned: list[Invalidation] = []
        for alias, rows in by_backend.items():
            try:
                backend = cdn_backends[alias]
                target = backend.target(site_for(website))
            except CdnConfigurationError as exc:
                # Retrying cannot help until an operator fixes the configuration: fail them visibly.
                with transaction.atomic():
                    for row in rows:
                        row.status, row.error, row.completed_at = (
                            Invalidation.Status.FAILED,
                            str(exc)[:2000],
                            timezone.now(),
                        )
                        row.save(update_fields=["status", "error", "completed_at"])
                        invalidation_event_record(invalidation=row)
                for _ in rows:
                    metrics.record_cdn_invalidation(backend=alias, status="failed")
                logger.warning("invalidations for website %s failed: %s", website_id, exc)
                continue
            paths = list(dict.fromkeys(path for row in rows for path in row.paths))
            batches = plan_requests(paths, backend, threshold=_threshold())
            reason = "; ".join(dict.fromkeys(row.reason for row in rows if row.reason))[:200]
            first, extra = rows[0], rows[1:]
            Invalidation.objects.filter(pk__in=[row.pk for row in extra]).delete()
            first.paths, first.reason, first.target = batches[0], reason, target
            first.hostnames = former_hostnames
            first.save(update_fields=["paths", "hostnames", "reason", "target"])
            planned.append(first)
            for batch in batches[1:]:
                planned.append(
                    Invalidation.objects.create(
                        website=website,
                        backend=alias,
                        target=first.target,
                        paths=batch,
                        reason=reason,
                        hostnames=former_hostnames,
                    )
                )
    site = site_for(website, former_hostnames=former_hostnames)
    throttled: CdnThrottled | None = None
    for row in planned:
        try:
            invalidation_submit(invalidation=row, site=site)
        except CdnThrottled as exc:
            throttled = exc
    if throttled is not None:
        raise throttled
    return list(Invalidation.objects.filter(pk__in=[row.pk for row in planned]).order_by("requested_at"))


def _capacity_left(backend: CdnBackend, row: Invalidation, site: Site) -> bool:
    """Whether sending row keeps the target within the provider's in-progress limits."""
    if backend.max_paths_in_progress is None and backend.max_wildcards_in_progress is None:
        return True
    for refresh in (False, True):
        in_progress = list(
            Invalidation.objects.filter(
                backend=row.backend, target=row.target, status=Invalidation.Status.IN_PROGRESS
            ).exclude(pk=row.pk)
        )
        if refresh:
            for other in in_progress:
                invalidation_poll_one(invalidation=other)
            in_progress = [other for other in in_progress if other.status == Invalidation.Status.IN_PROGRESS]
        wildcards = sum(other.wildcard_count for other in in_progress) + row.wildcard_count
        files = sum(len(other.paths) - other.wildcard_count for other in in_progress)
        files += len(row.paths) - row.wildcard_count
        if (backend.max_paths_in_progress is None or files <= backend.max_paths_in_progress) and (
            backend.max_wildcards_in_progress is None or wildcards <= backend.max_wildcards_in_progress
        ):
            return True
    return False


def invalidation_submit(*, invalidation: Invalidation, site: Site) -> Invalidation:
    """Send one planned invalidation to its provider and record the outcome."""
    backend = cdn_backends[invalidation.backend]
    if not _capacity_left(backend, invalidation, site):
        raise CdnThrottled(f"{invalidation.target}: provider in-progress limit reached", retry_after=30)
    with transaction.atomic():
        row = Invalidation.objects.select_for_update().get(pk=invalidation.pk)
        if row.status != Invalidation.Status.PENDING:
            return row
        row.status, row.submitted_at, row.attempts = Invalidation.Status.IN_PROGRESS, timezone.now(), row.attempts + 1
        row.save(update_fields=["status", "submitted_at", "attempts"])
    try:
        result = backend.invalidate(site, row.paths)
    except CdnThrottled as exc:
        Invalidation.objects.filter(pk=row.pk).update(status=Invalidation.Status.PENDING, error=str(exc)[:2000])
        metrics.record_cdn_invalidation(backend=row.backend, status="throttled")
        raise
    except (CdnError, CdnConfigurationError) as exc:
        logger.warning("invalidation failed id=%s: %s", row.pk, exc)
        metrics.record_cdn_invalidation(backend=row.backend, status="failed")
        row.status, row.error, row.completed_at = Invalidation.Status.FAILED, str(exc)[:2000], timezone.now()
        with transaction.atomic():
            row.save(update_fields=["status", "error", "completed_at"])
            invalidation_event_record(invalidation=row)
        return row
    row.provider_id = result.provider_id[:200]
    row.error = ""
    if result.completed:
        row.status, row.completed_at = Invalidation.Status.COMPLETED, timezone.now()
    with transaction.atomic():
        row.save(update_fields=["provider_id", "error", "status", "completed_at"])
        if row.status == Invalidation.Status.COMPLETED:
            invalidation_event_record(invalidation=row)
    metrics.record_cdn_invalidation(backend=row.backend, status="submitted")
    if result.completed:
        metrics.record_cdn_invalidation(backend=row.backend, status="completed")
    invalidation.status, invalidation.provider_id = row.status, row.provider_id
    logger.info("invalidation sent id=%s backend=%s provider_id=%s status=%s", row.pk, row.backend, row.provider_id,
                row.status)  # fmt: skip
    return row


def invalidation_poll_one(*, invalidation: Invalidation) -> Invalidation:
    """Ask the provider whether an in-progress invalidation has completed."""
    if invalidation.status != Invalidation.Status.IN_PROGRESS or not invalidation.provider_id:
        return invalidation
    backend = cdn_backends[invalidation.backend]
    try:
        state = backend.status(site_for(invalidation.website), invalidation.provider_id)
    except CdnError as exc:
        logger.warning("polling invalidation %s failed: %s", invalidation.pk, exc)
        return invalidation
    if state.lower() == "completed":
        now = timezone.now()
        with transaction.atomic():
            # Only the poller that moves it announces it (two pollers may see "completed" at once).
            moved = Invalidation.objects.filter(pk=invalidation.pk, status=Invalidation.Status.IN_PROGRESS).update(
                status=Invalidation.Status.COMPLETED, completed_at=now
            )
            invalidation.status, invalidation.completed_at = Invalidation.Status.COMPLETED, now
            if moved:
                invalidation_event_record(invalidation=invalidation)
        if moved:
            metrics.record_cdn_invalidation(backend=invalidation.backend, status="completed")
    return invalidation


def invalidation_poll_all(*, stale_after: timedelta = timedelta(minutes=5)) -> dict:
    """Update every in-progress invalidation; re-queue work a dead worker left behind."""
    counts = {"polled": 0, "completed": 0, "requeued": 0}
    for row in Invalidation.objects.filter(status=Invalidation.Status.IN_PROGRESS).exclude(provider_id=""):
        counts["polled"] += 1
        if invalidation_poll_one(invalidation=row).status == Invalidation.Status.COMPLETED:
            counts["completed"] += 1
    cutoff = timezone.now() - stale_after
    # Claimed but never answered: the worker died mid-request; sending again is harmless.
    orphaned = Invalidation.objects.filter(
        status=Invalidation.Status.IN_PROGRESS, provider_id="", submitted_at__lt=cutoff
    )
    orphaned.update(status=Invalidation.Status.PENDING)
    waiting = Invalidation.objects.filter(
        status=Invalidation.Status.PENDING, requested_at__lt=timezone.now() - timedelta(seconds=_window_seconds() + 30)
    )
    for website_id in set(waiting.values_list("website_id", flat=True)):
        counts["requeued"] += 1
        _enqueue_flush(str(website_id), countdown=0)
    return counts
