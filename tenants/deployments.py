"""Writes for deployments: create, run under a lease (swept when a worker dies), activate, roll back. Each
runs in one transaction; purging what changed is the cdn app's (cdn.services.deployment_purge)."""

import io
import logging
import tempfile
import uuid
from datetime import timedelta
from typing import BinaryIO

from django.db import transaction
from django.db.models import F, Max, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.enqueue import enqueue_now, enqueue_on_commit
from core.exceptions import ApplicationError, ConflictError, ServiceUnavailable
from core.leases import Lease, LeaseLost, lease_claim, lease_expired, lease_process, lease_ran_out
from core.objectstore import ObjectNotFound, ObjectPut, ObjectStorageError, object_store
from observability import metrics
from webhooks.services import event_record

from .bundles import BundleError, bundle_check_upload, bundle_publish, bundle_scan
from .models import Deployment, Tenant, Website
from .selectors import deployment_rollback_target

logger = logging.getLogger(__name__)

# What a deployment serves: where its files are and what they are. A run writes them once it has published
# the bundle; a rollback copies them from the deployment it returns to.
SERVED_FILES_FIELDS = ("storage_prefix", "manifest", "file_count", "total_bytes")


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
            from .tasks import deployment_run_task

            enqueue_on_commit(deployment_run_task, str(deployment_id))
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
        from cdn.services import deployment_purge

        deployment_purge(
            website=website, previous=previous.manifest, current=deployment.manifest,
            reason=f"deployment #{deployment.number}",
        )  # fmt: skip
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
            deployment.save(update_fields=SERVED_FILES_FIELDS)
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
    from .tasks import deployment_run_task

    counts = {"retried": 0, "failed": 0, "requeued": 0}
    max_attempts = _deploy_setting("DEPLOY_MAX_ATTEMPTS", 3)
    for deployment in lease_expired(Deployment.objects.filter(status=Deployment.Status.RUNNING)):
        if deployment.attempts < max_attempts:
            counts["retried"] += enqueue_now(deployment_run_task, str(deployment.pk))
            continue
        with transaction.atomic():
            current = Deployment.objects.select_for_update().get(pk=deployment.pk)
            if current.status != Deployment.Status.RUNNING or current.lease_owner != deployment.lease_owner:
                continue  # taken over or finished meanwhile
            counts["failed"] += 1
            deployment_fail(
                deployment=current,
                error=f"the worker running it stopped (no heartbeat for {_deploy_setting('DEPLOY_LEASE_SECONDS', 300):g} s) "
                f"{current.attempts} times, the last one {lease_process(current.lease_owner)}; not retried again",
            )
    waiting_since = timezone.now() - timedelta(seconds=_deploy_setting("DEPLOY_REQUEUE_AFTER_SECONDS", 300))
    for deployment_id in (
        Deployment.objects.filter(status=Deployment.Status.PENDING, created_at__lt=waiting_since)
        .exclude(bundle_key="")
        .values_list("pk", flat=True)
    ):
        counts["requeued"] += enqueue_now(deployment_run_task, str(deployment_id))
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
        **{name: getattr(to, name) for name in SERVED_FILES_FIELDS},
        started_at=now,
        finished_at=now,
    )
    _activate(rollback, event_type="deployment.rolled_back")
    logger.info("website %s rolled back to deployment #%s as #%s", website.pk, to.number, rollback.number)
    return rollback
