"""Provider requests: a website's waiting invalidations planned into requests (batching within the
provider's limits), sent (leased, bounded retries, throttling) and polled until final."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone

from core.enqueue import enqueue_many
from core.leases import lease_claim, lease_expired, lease_process, lease_released
from observability import metrics

from .backends import cdn_backends
from .backends.base import CdnBackend, CdnConfigurationError, CdnError, CdnRejected, CdnThrottled, Site
from .batching import plan_requests
from .models import Invalidation, ProviderRequest
from .services import coalesce_seconds, invalidation_event_record, site_for

logger = logging.getLogger(__name__)


def _threshold() -> int | None:
    return getattr(settings, "CDN_WILDCARD_THRESHOLD", 100)


def _max_attempts() -> int:
    return int(getattr(settings, "CDN_INVALIDATION_MAX_ATTEMPTS", 5))


def _retry_delay(attempts: int) -> float:
    """Seconds before attempt `attempts + 1`: CDN_RETRY_BACKOFF_SECONDS doubled per attempt, at most 15 min."""
    return min(float(getattr(settings, "CDN_RETRY_BACKOFF_SECONDS", 30)) * 2 ** max(attempts - 1, 0), 900.0)


def _lease_seconds() -> float:
    return float(getattr(settings, "CDN_SEND_LEASE_SECONDS", 120))


def invalidations_plan(*, website_id) -> list[ProviderRequest]:
    """Turn a website's waiting invalidations into provider requests (batched within the provider's
    limits) and link each invalidation to the requests that carry its paths."""
    from tenants.models import Website

    created: list[ProviderRequest] = []
    with transaction.atomic():
        rows = list(
            Invalidation.objects.select_for_update(skip_locked=True)
            .filter(website_id=website_id, status=Invalidation.Status.PENDING, submitted_at=None)
            .order_by("requested_at")
        )
        if not rows:
            return []
        website = Website.objects.get(pk=website_id)
        by_backend: dict[str, list[Invalidation]] = {}
        for row in rows:
            by_backend.setdefault(row.backend, []).append(row)
        now = timezone.now()
        for alias, group in by_backend.items():
            try:
                backend = cdn_backends[alias]
                target = backend.target(site_for(website))
            except CdnConfigurationError as exc:
                # Retrying cannot help until an operator fixes the configuration: fail them visibly.
                for row in group:
                    row.status, row.error, row.completed_at = Invalidation.Status.FAILED, str(exc)[:2000], now
                    row.save(update_fields=["status", "error", "completed_at"])
                    invalidation_event_record(invalidation=row)
                    metrics.record_cdn_invalidation(backend=alias, status="failed")
                logger.warning("invalidations for website %s failed: %s", website_id, exc)
                continue
            paths = list(dict.fromkeys(path for row in group for path in row.paths))
            former_hostnames = list(dict.fromkeys(host for row in group for host in row.hostnames))
            batches = plan_requests(paths, backend, threshold=_threshold())
            requests = ProviderRequest.objects.bulk_create(
                [ProviderRequest(website=website, backend=alias, target=target, paths=batch, hostnames=former_hostnames)
                 for batch in batches]
            )  # fmt: skip
            Invalidation.requests.through.objects.bulk_create(
                [
                    Invalidation.requests.through(invalidation_id=row.pk, providerrequest_id=request.pk)
                    for row in group
                    for request in requests
                ]
            )
            Invalidation.objects.filter(pk__in=[row.pk for row in group]).update(submitted_at=now)
            created += requests
    return created


def invalidation_flush(*, website_id) -> list[ProviderRequest]:
    """Plan a website's waiting invalidations and send every provider request that is due.

    Returns the requests sent by this call. Requests that must wait (provider capacity, rate limit,
    a retry after a failure) stay pending; `invalidation_retry_in` tells when to flush again.
    """
    from tenants.models import Website

    invalidations_plan(website_id=website_id)
    now = timezone.now()
    due = list(
        ProviderRequest.objects.filter(website_id=website_id, status=ProviderRequest.Status.PENDING)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .order_by("created_at")
    )
    if not due:
        return []
    website = Website.objects.get(pk=website_id)
    for request in due:
        provider_request_send(request=request, site=site_for(website, former_hostnames=request.hostnames))
    return list(ProviderRequest.objects.filter(pk__in=[request.pk for request in due]).order_by("created_at"))


def invalidation_retry_in(*, website_id) -> float | None:
    """Seconds until the website's next pending provider request is due; None when nothing waits."""
    waiting = (
        ProviderRequest.objects.filter(website_id=website_id, status=ProviderRequest.Status.PENDING)
        .order_by(models.F("not_before").asc(nulls_first=True))
        .values_list("not_before", flat=True)
        .first()
    )
    if (
        waiting is None
        and not ProviderRequest.objects.filter(website_id=website_id, status=ProviderRequest.Status.PENDING).exists()
    ):
        return None
    return max((waiting - timezone.now()).total_seconds(), 1.0) if waiting else 1.0


def _capacity_left(backend: CdnBackend, request: ProviderRequest) -> bool:
    """Whether sending request keeps the target within the provider's in-progress limits."""
    if backend.max_paths_in_progress is None and backend.max_wildcards_in_progress is None:
        return True
    for refresh in (False, True):
        in_progress = list(
            ProviderRequest.objects.filter(
                backend=request.backend, target=request.target, status=ProviderRequest.Status.IN_PROGRESS
            ).exclude(pk=request.pk)
        )
        if refresh:
            for other in in_progress:
                provider_request_poll(request=other)
            in_progress = [other for other in in_progress if other.status == ProviderRequest.Status.IN_PROGRESS]
        wildcards = sum(other.wildcard_count for other in in_progress) + request.wildcard_count
        files = sum(len(other.paths) - other.wildcard_count for other in in_progress)
        files += len(request.paths) - request.wildcard_count
        if (backend.max_paths_in_progress is None or files <= backend.max_paths_in_progress) and (
            backend.max_wildcards_in_progress is None or wildcards <= backend.max_wildcards_in_progress
        ):
            return True
    return False


def _defer(request: ProviderRequest, *, seconds: float, error: str, condition: Q | None = None, **fields) -> None:
    ProviderRequest.objects.filter(condition or Q(pk=request.pk)).update(
        status=ProviderRequest.Status.PENDING, not_before=timezone.now() + timedelta(seconds=seconds),
        error=error[:2000], **lease_released(), **fields,
    )  # fmt: skip


def provider_request_send(*, request: ProviderRequest, site: Site) -> ProviderRequest:
    """Send one planned provider request under a lease and record the outcome.

    A provider error or an unexpected failure is retried (growing delay) until
    CDN_INVALIDATION_MAX_ATTEMPTS, then the request and its invalidations fail with the error; a
    configuration error fails them at once; a throttle waits without using up an attempt.
    """
    try:
        backend = cdn_backends[request.backend]
    except CdnConfigurationError as exc:
        return _finish(request, status=ProviderRequest.Status.FAILED, error=str(exc))
    if not _capacity_left(backend, request):
        _defer(request, seconds=30, error=f"{request.target}: provider in-progress limit reached")
        metrics.record_cdn_invalidation(backend=request.backend, status="throttled")
        return request
    lease = lease_claim(
        ProviderRequest.objects, pk=request.pk, seconds=_lease_seconds(),
        claimable=Q(status=ProviderRequest.Status.PENDING),
        status=ProviderRequest.Status.IN_PROGRESS, submitted_at=timezone.now(),
    )  # fmt: skip
    if lease is None:
        return request  # another worker is sending it
    request.refresh_from_db()
    _invalidations_refresh([request.pk])
    try:
        result = backend.invalidate(site, request.paths)
    except CdnThrottled as exc:
        # Waiting for the provider is not a failed attempt.
        _defer(request, seconds=exc.retry_after, error=str(exc), condition=lease.held(), attempts=F("attempts") - 1)
        metrics.record_cdn_invalidation(backend=request.backend, status="throttled")
        return request
    except (CdnConfigurationError, CdnRejected) as exc:
        logger.warning("invalidation request %s refused: %s", request.pk, exc)
        return _finish(request, status=ProviderRequest.Status.FAILED, error=str(exc), condition=lease.held())
    except Exception as exc:  # a provider error, or a bug: either way the row must not stay in progress
        if isinstance(exc, CdnError):
            error = str(exc)
            logger.warning("invalidation request %s failed (attempt %s): %s", request.pk, request.attempts, exc)
        else:
            error = f"internal error ({exc.__class__.__name__}: {exc})"
            logger.exception("invalidation request %s failed unexpectedly", request.pk)
        if request.attempts >= _max_attempts():
            return _finish(request, status=ProviderRequest.Status.FAILED,
                           error=f"{error} (gave up after {request.attempts} attempts)", condition=lease.held())  # fmt: skip
        _defer(request, seconds=_retry_delay(request.attempts), error=error, condition=lease.held())
        metrics.record_cdn_invalidation(backend=request.backend, status="retrying")
        return request
    metrics.record_cdn_invalidation(backend=request.backend, status="submitted")
    status = ProviderRequest.Status.COMPLETED if result.completed else ProviderRequest.Status.IN_PROGRESS
    request = _finish(request, status=status, provider_id=result.provider_id[:200], condition=lease.held())
    logger.info("invalidation request sent id=%s backend=%s provider_id=%s status=%s", request.pk, request.backend,
                request.provider_id, request.status)  # fmt: skip
    return request


def _finish(
    request: ProviderRequest,
    *,
    status: str,
    error: str = "",
    provider_id: str | None = None,
    condition: Q | None = None,
) -> ProviderRequest:
    """Record a provider request's outcome (only while its lease is held, when one is given), then
    carry it to the invalidations it serves."""
    final = status in (ProviderRequest.Status.COMPLETED, ProviderRequest.Status.FAILED)
    fields = {"status": status, "error": error[:2000], **lease_released()}
    if provider_id is not None:
        fields["provider_id"] = provider_id
    if final:
        fields["completed_at"] = timezone.now()
    with transaction.atomic():
        if not ProviderRequest.objects.filter(condition or Q(pk=request.pk)).update(**fields):
            return request  # the lease was taken over: the new holder records the outcome
        _invalidations_refresh([request.pk])
    if status == ProviderRequest.Status.COMPLETED:
        metrics.record_cdn_invalidation(backend=request.backend, status="completed")
    elif status == ProviderRequest.Status.FAILED:
        logger.warning("invalidation request %s failed: %s", request.pk, error)
        metrics.record_cdn_invalidation(backend=request.backend, status="failed")
    request.refresh_from_db()
    return request


def _invalidations_refresh(request_ids: list) -> None:
    """Set the status of the invalidations carried by these provider requests from all their requests:
    failed when one failed, completed when all completed, in progress once one was sent."""
    through = Invalidation.requests.through
    with transaction.atomic():
        rows = Invalidation.objects.select_for_update().filter(
            pk__in=models.Subquery(
                through.objects.filter(providerrequest_id__in=request_ids).values("invalidation_id")
            ),
            status__in=[Invalidation.Status.PENDING, Invalidation.Status.IN_PROGRESS],
        )
        for row in rows:
            states = list(row.requests.values_list("status", "error"))
            statuses = {state for state, _ in states}
            if ProviderRequest.Status.FAILED in statuses:
                status = Invalidation.Status.FAILED
                row.error = next(error for state, error in states if state == ProviderRequest.Status.FAILED)
            elif statuses == {ProviderRequest.Status.COMPLETED}:
                status = Invalidation.Status.COMPLETED
            elif statuses - {ProviderRequest.Status.PENDING}:
                status = Invalidation.Status.IN_PROGRESS
            else:
                status = Invalidation.Status.PENDING
            if status == row.status:
                continue
            row.status = status
            if status in (Invalidation.Status.COMPLETED, Invalidation.Status.FAILED):
                row.completed_at = timezone.now()
            row.save(update_fields=["status", "error", "completed_at"])
            if row.completed_at:
                invalidation_event_record(invalidation=row)


def provider_request_poll(*, request: ProviderRequest) -> ProviderRequest:
    """Ask the provider whether an in-progress request has completed."""
    if request.status != ProviderRequest.Status.IN_PROGRESS or not request.provider_id:
        return request
    backend = cdn_backends[request.backend]
    try:
        state = backend.status(site_for(request.website), request.provider_id)
    except CdnError as exc:
        logger.warning("polling invalidation request %s failed: %s", request.pk, exc)
        return request
    if state.lower() == "completed":
        # Only the poller that moves it announces it (two pollers may see "completed" at once).
        return _finish(
            request, status=ProviderRequest.Status.COMPLETED, provider_id=request.provider_id,
            condition=Q(pk=request.pk, status=ProviderRequest.Status.IN_PROGRESS),
        )  # fmt: skip
    return request


def invalidation_poll_all() -> dict:
    """Beat: track in-progress provider requests; retry or fail those whose worker died mid-send (lease
    ran out); flush what waits longer than its window (a lost task)."""
    counts = {"polled": 0, "completed": 0, "requeued": 0, "expired": 0}
    for request in ProviderRequest.objects.filter(status=ProviderRequest.Status.IN_PROGRESS).exclude(provider_id=""):
        counts["polled"] += 1
        if provider_request_poll(request=request).status == ProviderRequest.Status.COMPLETED:
            counts["completed"] += 1
    stale = lease_expired(ProviderRequest.objects.filter(status=ProviderRequest.Status.IN_PROGRESS, provider_id=""))
    for request in stale:
        counts["expired"] += 1
        condition = Q(pk=request.pk, lease_owner=request.lease_owner, status=ProviderRequest.Status.IN_PROGRESS)
        error = f"the worker sending it ({lease_process(request.lease_owner)}) stopped before the provider answered"
        if request.attempts >= _max_attempts():
            _finish(request, status=ProviderRequest.Status.FAILED,
                    error=f"{error} (gave up after {request.attempts} attempts)", condition=condition)  # fmt: skip
        else:
            _defer(request, seconds=0, error=f"{error}; retrying", condition=condition)
    now = timezone.now()
    websites = set(
        ProviderRequest.objects.filter(status=ProviderRequest.Status.PENDING)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .values_list("website_id", flat=True)
    )
    websites |= set(
        Invalidation.objects.filter(
            status=Invalidation.Status.PENDING, submitted_at=None,
            requested_at__lt=now - timedelta(seconds=coalesce_seconds() + 30),
        ).values_list("website_id", flat=True)
    )  # fmt: skip
    from .tasks import invalidation_flush_task

    counts["requeued"] += enqueue_many(invalidation_flush_task, [(str(website_id),) for website_id in websites])
    return counts
