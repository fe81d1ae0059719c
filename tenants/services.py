"""Writes for tenants, websites and deployments. Each runs in one transaction."""

import io
import logging
import tempfile
import uuid
from datetime import timedelta
from typing import BinaryIO

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from cdn.policy import ContentClass, classify
from core.exceptions import ApplicationError, ConflictError, ServiceUnavailable
from core.leases import Lease, LeaseLost, lease_claim, lease_expired, lease_ran_out
from core.objectstore import ObjectNotFound, ObjectPut, ObjectStorageError, object_store
from observability import metrics
from webhooks.services import event_record

from .access import publish_tenant_access
from .bundles import BundleError, bundle_check_upload, bundle_publish, bundle_scan
from .hostnames import normalize_hostnames
from .models import Deployment, Hostname, Tenant, Tier, Website
from .selectors import deployment_rollback_target, hostnames_verified_elsewhere
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


# --- deployments ------------------------------------------------------------------------------


def deployment_event_record(*, deployment: Deployment, event_type: str) -> None:
    """Record a `deployment.*` domain event in the caller's transaction.

    Types: deployment.created (logged only), deployment.started, deployment.succeeded,
    deployment.failed, deployment.rolled_back (a rollback's deployment went live: sent to webhooks as
    deployment.succeeded, its payload's trigger "rollback"). Webhook types go to the outbox.
    """
    logger.info("event %s deployment=%s website=%s number=%s", event_type, deployment.pk, deployment.website_id,
                deployment.number)  # fmt: skip
    webhook_type = WEBHOOK_DEPLOYMENT_EVENTS.get(event_type)
    if webhook_type:
        _deployment_event(deployment, webhook_type)


WEBHOOK_DEPLOYMENT_EVENTS = {
    "deployment.started": "deployment.started",
    "deployment.succeeded": "deployment.succeeded",
    "deployment.failed": "deployment.failed",
    "deployment.rolled_back": "deployment.succeeded",
}


def deployment_create(
    *,
    website: Website,
    trigger: str = Deployment.Trigger.API,
    description: str = "",
    bundle: bytes | BinaryIO | None = None,
    run: bool = True,
) -> Deployment:
    """Create the website's next deployment (numbered 1, 2, ...) and queue it to run after commit.

    A bundle (bytes or a binary file) gets the cheap checks only (size, an archive's magic bytes:
    BundleError or a 413, nothing written) and is streamed to object storage; the worker that runs the
    deployment validates it whole (a bad bundle fails the deployment with the reason).
    """
    deployment_id = uuid.uuid4()
    bundle_key, bundle_size = "", None
    if bundle is not None:
        fileobj = io.BytesIO(bundle) if isinstance(bundle, bytes) else bundle
        start = fileobj.tell()
        bundle_size = fileobj.seek(0, io.SEEK_END) - start
        fileobj.seek(start)
        extension = bundle_check_upload(fileobj, size=bundle_size)
        bundle_key = f"bundles/{website.pk}/{deployment_id}.{extension}"
        try:
            object_store().put_file(
                ObjectPut(key=bundle_key, body=b"", content_type="application/octet-stream", cache_control="no-store"),
                fileobj,
            )
        except ObjectStorageError as exc:
            logger.warning("storing bundle for website %s failed: %s", website.pk, exc)
            raise ServiceUnavailable(
                "storage_unavailable", "Object storage is unavailable; try again shortly."
            ) from exc
    try:
        return _deployment_create_row(
            website=website, deployment_id=deployment_id, trigger=trigger, description=description,
            bundle_key=bundle_key, bundle_size=bundle_size, run=run,
        )  # fmt: skip
    except Exception:
        if bundle_key:  # no deployment refers to the upload: don't leave it behind
            try:
                object_store().delete(bundle_key)
            except Exception:
                logger.warning("could not delete orphaned bundle %s", bundle_key)
        raise


def _deployment_create_row(
    *, website: Website, deployment_id, trigger: str, description: str, bundle_key: str, bundle_size, run: bool
) -> Deployment:
    with transaction.atomic():
        # The website row lock serialises numbering, so two concurrent deploys never share a number.
        website = Website.objects.select_for_update().get(pk=website.pk)
        if website.status != Website.Status.ACTIVE:
            raise ConflictError("The website is disabled.", code="invalid_state")
        last = website.deployments.aggregate(last=Max("number"))["last"] or 0
        deployment = Deployment(
            id=deployment_id,
            website=website,
            number=last + 1,
            trigger=trigger,
            description=description,
            bundle_key=bundle_key,
            bundle_size=bundle_size,
        )
        deployment.full_clean(validate_unique=False, validate_constraints=False)
        deployment.save()
        deployment_event_record(deployment=deployment, event_type="deployment.created")
        if run:
            from .tasks import deployment_run

            transaction.on_commit(lambda: deployment_run.delay(str(deployment_id)))
    logger.info("deployment created id=%s website=%s number=%s", deployment.pk, website.pk, deployment.number)
    return deployment


def _transition(deployment: Deployment, allowed_from: set[str], *, lease: Lease | None = None) -> Deployment:
    deployment = Deployment.objects.select_for_update().get(pk=deployment.pk)
    if lease is not None and deployment.lease_owner != lease.owner:
        raise LeaseLost(f"deployment {deployment.pk} was taken over")
    if deployment.status not in allowed_from:
        raise ConflictError(
            f"Deployment #{deployment.number} is {deployment.status}; cannot change it now.", code="invalid_state"
        )
    return deployment


def _deploy_setting(name: str, default):
    from django.conf import settings

    return getattr(settings, name, default)


def deployment_claim(*, deployment_id) -> tuple[Deployment, Lease] | None:
    """Take a deployment to run it: a pending one, or a running one whose worker stopped renewing its
    lease (died, hung) while attempts remain. None when it is not there to take."""
    lease = lease_claim(
        Deployment.objects, pk=deployment_id, seconds=_deploy_setting("DEPLOY_LEASE_SECONDS", 300),
        claimable=Q(status=Deployment.Status.PENDING)
        | (Q(status=Deployment.Status.RUNNING, attempts__lt=_deploy_setting("DEPLOY_MAX_ATTEMPTS", 3)) & lease_ran_out()),
        status=Deployment.Status.RUNNING, started_at=Coalesce(F("started_at"), timezone.now()),
    )  # fmt: skip
    if lease is None:
        return None
    with transaction.atomic():
        deployment = Deployment.objects.get(pk=deployment_id)
        if deployment.attempts == 1:
            deployment_event_record(deployment=deployment, event_type="deployment.started")
        else:
            logger.warning("deployment %s taken over after its worker stopped (attempt %s)", deployment.pk,
                           deployment.attempts)  # fmt: skip
    return deployment, lease


@transaction.atomic
def deployment_start(*, deployment: Deployment) -> Deployment:
    """Mark a pending deployment running (under a lease, see deployment_claim)."""
    claimed = deployment_claim(deployment_id=deployment.pk)
    if claimed is None:
        _transition(deployment, {Deployment.Status.PENDING})  # raises the clear conflict
    return claimed[0]


def _record_outcome_on_commit(deployment: Deployment) -> None:
    # After commit: a rolled-back transition was never a finished deployment.
    tenant_id, status = deployment.website.tenant_id, deployment.status
    transaction.on_commit(lambda: metrics.record_deployment(tenant_id=tenant_id, status=status))


@transaction.atomic
def deployment_succeed(*, deployment: Deployment, lease: Lease | None = None) -> Deployment:
    """Mark a running deployment succeeded and make it the one its website serves."""
    deployment = _transition(deployment, {Deployment.Status.RUNNING}, lease=lease)
    deployment.status = Deployment.Status.SUCCEEDED
    deployment.finished_at = timezone.now()
    deployment.lease_owner, deployment.lease_expires_at = "", None
    deployment.save(update_fields=["status", "finished_at", "lease_owner", "lease_expires_at"])
    activated = _activate(deployment, event_type="deployment.succeeded")
    _record_outcome_on_commit(deployment)
    logger.info("deployment succeeded id=%s activated=%s", deployment.pk, activated)
    return deployment


@transaction.atomic
def deployment_fail(*, deployment: Deployment, error: str, lease: Lease | None = None) -> Deployment:
    """Mark a deployment failed; the website keeps serving its previous deployment."""
    deployment = _transition(deployment, {Deployment.Status.PENDING, Deployment.Status.RUNNING}, lease=lease)
    now = timezone.now()
    deployment.status = Deployment.Status.FAILED
    deployment.started_at = deployment.started_at or now
    deployment.finished_at = now
    deployment.error = error[:10_000]
    deployment.lease_owner, deployment.lease_expires_at = "", None
    deployment.save(update_fields=["status", "started_at", "finished_at", "error", "lease_owner", "lease_expires_at"])
    deployment_event_record(deployment=deployment, event_type="deployment.failed")
    _record_outcome_on_commit(deployment)
    logger.info("deployment failed id=%s", deployment.pk)
    return deployment


def _url_paths(file_path: str) -> list[str]:
    """The canonical URLs a file is served under (cdn.paths): about/index.html is also /about/ and /about
    (which redirects to /about/, and may be a cached 404 from before), index.html also /.

    A name that cannot be an exact purge path (a literal '*', too long once encoded) is covered by its
    directory's wildcard instead, so it never drops the other paths.
    """
    from cdn.paths import InvalidPath, file_url_path

    directory = file_path.rsplit("/", 1)[0] + "/" if "/" in file_path else ""
    try:
        if "*" in file_path:
            raise InvalidPath("a literal '*'")
        url = file_url_path(file_path)
        if file_path == "index.html":
            return ["/", url]
        if file_path.endswith("/index.html"):
            folder = url[: -len("index.html")]
            return [folder, folder.rstrip("/"), url]
        return [url]
    except InvalidPath:
        logger.info("file %r is purged through its directory's wildcard", file_path[:200])
    parts = directory.split("/")[:-1]
    while parts:
        try:
            return [file_url_path("/".join(parts) + "/") + "*"]
        except InvalidPath:
            parts.pop()
    return ["/*"]


def deployment_changed_paths(*, previous: dict | None, current: dict) -> list[str]:
    """URL paths whose content differs between two manifests (added, changed or removed files).

    Versioned assets never change under their name, so they are left out; everything else a CDN may
    hold for up to its max-age is listed.
    """
    previous = previous or {}
    changed = [
        path
        for path in sorted(set(previous) | set(current))
        if previous.get(path, {}).get("sha256") != current.get(path, {}).get("sha256")
        and classify("/" + path) is not ContentClass.VERSIONED
    ]
    return [url for path in changed for url in _url_paths(path)]


def _activate(deployment: Deployment, *, event_type: str) -> bool:
    """Point the website at deployment (one row update) and purge what changed; inside a transaction.

    A deployment that finishes after a newer one was activated does not replace it (two deploys
    running side by side end with the newest serving, whatever order they finish in).
    """
    website = Website.objects.select_for_update().get(pk=deployment.website_id)
    previous = Deployment.objects.filter(pk=website.active_deployment_id).only("manifest", "number").first()
    if previous is not None and previous.number > deployment.number:
        deployment_event_record(deployment=deployment, event_type=event_type)
        logger.info("deployment %s finished after newer #%s went live; not activated", deployment.pk, previous.number)
        return False
    website.active_deployment = deployment
    website.save(update_fields=["active_deployment", "updated_at"])
    deployment_event_record(deployment=deployment, event_type=event_type)
    if previous is not None:  # a first deployment has nothing cached to purge
        changed = deployment_changed_paths(previous=previous.manifest, current=deployment.manifest)
        if changed:
            from cdn.batching import collapse_paths
            from cdn.services import MAX_PATHS_PER_CALL, invalidation_request

            if len(changed) > MAX_PATHS_PER_CALL:  # a huge deploy: purge crowded directories as wildcards
                changed = collapse_paths(changed, threshold=100)
                changed = changed if len(changed) <= MAX_PATHS_PER_CALL else ["/*"]

            try:
                invalidation_request(website=website, paths=changed, reason=f"deployment #{deployment.number}")
            except ApplicationError as exc:
                # A misconfigured CDN must not block serving the new version; the operator sees it logged.
                logger.warning("deployment %s: CDN invalidation not requested: %s", deployment.pk, exc.message)
    return True


def deployment_execute(*, deployment: Deployment) -> Deployment:
    """Run a deployment: validate its bundle, store the files under an immutable prefix, then activate
    it atomically. Any failure marks it failed with the reason; the previous version keeps serving.

    Runs under a lease renewed as it goes: if this worker dies, `deployments_sweep` retries it elsewhere
    (or fails it after DEPLOY_MAX_ATTEMPTS). A deployment another worker holds is returned untouched.
    """
    claimed = deployment_claim(deployment_id=deployment.pk)
    if claimed is None:
        return Deployment.objects.get(pk=deployment.pk)
    deployment, lease = claimed
    store = object_store()
    prefix = f"sites/{deployment.website_id}/deployments/{deployment.number:06d}-{deployment.pk}/"
    try:
        if not deployment.bundle_key:
            raise BundleError("the deployment has no bundle")
        # The bundle is spooled to disk and read twice (validate, publish): memory stays bounded.
        with tempfile.TemporaryFile(prefix="bundle-") as spool:
            store.download(deployment.bundle_key, spool)
            lease.renew_if_due()
            index = bundle_scan(spool, progress=lease.renew_if_due)
            manifest = bundle_publish(
                fileobj=spool, index=index, store=store, prefix=prefix,
                cache_overrides=deployment.website.cache_overrides, progress=lease.renew_if_due,
            )  # fmt: skip
    except LeaseLost:
        logger.warning("deployment %s: the lease was taken over; leaving it to the new holder", deployment.pk)
        return Deployment.objects.get(pk=deployment.pk)
    except BundleError as exc:
        if deployment.bundle_key:  # a refused bundle is not kept
            _delete_quietly(store, deployment.bundle_key)
        return _fail_unless_taken_over(deployment, exc.message, lease)
    except (ObjectNotFound, ObjectStorageError) as exc:
        logger.warning("deployment %s: object storage failed: %s", deployment.pk, exc)
        return _fail_unless_taken_over(deployment, f"object storage failed: {exc}", lease)
    except Exception as exc:
        logger.exception("deployment %s failed unexpectedly", deployment.pk)
        _fail_unless_taken_over(deployment, f"internal error ({exc.__class__.__name__})", lease)
        raise
    try:
        with transaction.atomic():
            deployment = _transition(deployment, {Deployment.Status.RUNNING}, lease=lease)
            deployment.storage_prefix = prefix
            deployment.manifest = manifest
            deployment.file_count = len(manifest)
            deployment.total_bytes = sum(entry["size"] for entry in manifest.values())
            deployment.save(update_fields=["storage_prefix", "manifest", "file_count", "total_bytes"])
            return deployment_succeed(deployment=deployment, lease=lease)
    except LeaseLost:
        logger.warning("deployment %s: the lease was taken over before activation", deployment.pk)
        return Deployment.objects.get(pk=deployment.pk)


def _fail_unless_taken_over(deployment: Deployment, error: str, lease: Lease) -> Deployment:
    try:
        return deployment_fail(deployment=deployment, error=error, lease=lease)
    except LeaseLost:
        return Deployment.objects.get(pk=deployment.pk)


def _delete_quietly(store, key: str) -> None:
    try:
        store.delete(key)
    except Exception:
        logger.warning("could not delete %s", key)


def deployments_sweep() -> dict:
    """Beat: a running deployment whose lease ran out (its worker died or hangs) is queued again, or failed
    with the reason after DEPLOY_MAX_ATTEMPTS; a pending one whose task was lost is queued again."""
    from .tasks import deployment_run

    counts = {"retried": 0, "failed": 0, "requeued": 0}
    max_attempts = _deploy_setting("DEPLOY_MAX_ATTEMPTS", 3)
    for deployment in lease_expired(Deployment.objects.filter(status=Deployment.Status.RUNNING)):
        if deployment.attempts < max_attempts:
            counts["retried"] += 1
            deployment_run.delay(str(deployment.pk))
            continue
        with transaction.atomic():
            current = Deployment.objects.select_for_update().get(pk=deployment.pk)
            if current.status != Deployment.Status.RUNNING or current.lease_owner != deployment.lease_owner:
                continue  # taken over or finished meanwhile
            counts["failed"] += 1
            deployment_fail(
                deployment=current,
                error=f"the worker running it stopped (no heartbeat for {_deploy_setting('DEPLOY_LEASE_SECONDS', 300):g} s) "
                f"{current.attempts} times; not retried again",
            )
    waiting_since = timezone.now() - timedelta(seconds=_deploy_setting("DEPLOY_REQUEUE_AFTER_SECONDS", 300))
    for deployment_id in (
        Deployment.objects.filter(status=Deployment.Status.PENDING, created_at__lt=waiting_since)
        .exclude(bundle_key="")
        .values_list("pk", flat=True)
    ):
        counts["requeued"] += 1
        deployment_run.delay(str(deployment_id))
    return counts


@transaction.atomic
def deployment_rollback(*, website: Website, to: Deployment | None = None, description: str = "") -> Deployment:
    """Serve an earlier deployment's files again, as a new deployment (trigger=rollback).

    Without `to`, the latest succeeded deployment before the active one. Its files are immutable in
    object storage, so this is a pointer switch plus purging what differs.
    """
    website = Website.objects.select_for_update().get(pk=website.pk)
    if website.status != Website.Status.ACTIVE:
        raise ConflictError("The website is disabled.", code="invalid_state")
    active = website.active_deployment
    candidates = website.deployments.filter(status=Deployment.Status.SUCCEEDED).exclude(storage_prefix="")
    if to is None:
        if active is None:
            raise ConflictError("The website has no active deployment to roll back from.", code="invalid_state")
        to = deployment_rollback_target(website=website)
        if to is None:
            raise ConflictError("There is no earlier successful deployment to roll back to.", code="invalid_state")
    elif to.website_id != website.pk or not candidates.filter(pk=to.pk).exists():
        raise ApplicationError(
            "invalid", "The request is invalid.",
            fields={"deployment": ["Not a successful deployment of this website."]},
        )  # fmt: skip
    last = website.deployments.aggregate(last=Max("number"))["last"] or 0
    now = timezone.now()
    rollback = Deployment.objects.create(
        website=website,
        number=last + 1,
        status=Deployment.Status.SUCCEEDED,
        trigger=Deployment.Trigger.ROLLBACK,
        description=(description or f"rollback to #{to.number}")[:500],
        source_deployment=to,
        storage_prefix=to.storage_prefix,
        manifest=to.manifest,
        file_count=to.file_count,
        total_bytes=to.total_bytes,
        started_at=now,
        finished_at=now,
    )
    _activate(rollback, event_type="deployment.rolled_back")
    logger.info("website %s rolled back to deployment #%s as #%s", website.pk, to.number, rollback.number)
    return rollback
