"""Recovery: the sweeper (lost tasks, lost attempts), redelivery and replay by operators and tenants."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.exceptions import ApplicationError
from core.leases import lease_ran_out
from observability import metrics

from .delivery import pump_wake
from .models import Attempt, Delivery, Endpoint, Event
from .queueing import enqueue

logger = logging.getLogger(__name__)

Status = Delivery.Status
LOST_ERROR = "Lost: the worker stopped before the outcome was recorded (its lease ran out); sent again."


def _tasks():
    from . import tasks

    return tasks


def _redeliver_ids(ids: list, *, manual: bool) -> None:
    size = settings.WEBHOOKS_BATCH_SIZE
    for start in range(0, len(ids), size):
        enqueue(_tasks().deliveries_attempt_task, [str(pk) for pk in ids[start : start + size]], manual)


@transaction.atomic
def delivery_redeliver(*, delivery: Delivery) -> Delivery:
    """Queue one more attempt of a delivery now (same webhook-id), whatever its state."""
    delivery = Delivery.objects.select_for_update(of=("self",)).get(pk=delivery.pk)
    if not Endpoint.objects.filter(pk=delivery.endpoint_id, is_active=True).exists():
        raise ApplicationError("invalid_state", "The endpoint is disabled; enable it first.", status_code=409)
    now = timezone.now()
    delivery.status = Status.PENDING
    delivery.next_attempt_at = now
    delivery.finished_at = None
    delivery.queued_until = now + timedelta(seconds=settings.WEBHOOKS_REQUEUE_AFTER_SECONDS)
    delivery.save(update_fields=["status", "next_attempt_at", "finished_at", "queued_until"])
    delivery_pk = delivery.pk
    transaction.on_commit(lambda: _redeliver_ids([delivery_pk], manual=True))
    return delivery


@transaction.atomic
def deliveries_replay_failed(*, endpoint: Endpoint, since: datetime) -> int:
    """Redeliver every failed delivery of the endpoint created since the given time."""
    if not Endpoint.objects.filter(pk=endpoint.pk, is_active=True).exists():
        raise ApplicationError("invalid_state", "The endpoint is disabled; enable it first.", status_code=409)
    now = timezone.now()
    ids = list(
        Delivery.objects.filter(endpoint=endpoint, status=Status.FAILED, created_at__gte=since).values_list(
            "pk", flat=True
        )[:10_000]
    )
    Delivery.objects.filter(pk__in=ids).update(
        status=Status.PENDING,
        next_attempt_at=now,
        finished_at=None,
        queued_until=now + timedelta(seconds=settings.WEBHOOKS_REQUEUE_AFTER_SECONDS),
    )
    transaction.on_commit(lambda: _redeliver_ids(ids, manual=True))
    logger.info("webhook replay endpoint=%s since=%s count=%s", endpoint.pk, since.isoformat(), len(ids))
    return len(ids)


def attempts_mark_lost(*, limit: int = 1000) -> int:
    """Deliveries whose sender stopped renewing its lease (killed, hung): their started attempts went on
    the wire with no recorded outcome. Mark them lost and make the deliveries due again."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(lease_ran_out(now))
            .exclude(lease_owner="")
            .values_list("pk", flat=True)[:limit]
        )
        if not ids:
            return 0
        lost = Attempt.objects.filter(delivery_id__in=ids, state=Attempt.State.STARTED).update(
            state=Attempt.State.LOST, error=LOST_ERROR
        )
        Delivery.objects.filter(pk__in=ids, status=Status.PENDING).update(
            lease_owner="", lease_expires_at=None, next_attempt_at=now
        )
        Delivery.objects.filter(pk__in=ids).exclude(status=Status.PENDING).update(lease_owner="", lease_expires_at=None)
    for _ in range(lost):
        metrics.record_webhook_delivery(outcome="lost", seconds=0)
    logger.warning("webhooks: %s attempt(s) lost with their worker; %s delivery(ies) due again", lost, len(ids))
    return lost


def webhooks_sweep(*, limit: int = 1000) -> dict:
    """Queue what a lost task left behind: events not fanned out, attempts whose worker died, due deliveries."""
    from . import tasks

    now = timezone.now()
    requeue_after = timedelta(seconds=settings.WEBHOOKS_REQUEUE_AFTER_SECONDS)
    event_ids = list(
        Event.objects.filter(fanned_out_at__isnull=True, created_at__lte=now - requeue_after)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    for event_id in event_ids:
        enqueue(tasks.event_fan_out_task, str(event_id))
    lost = attempts_mark_lost(limit=limit)
    now = timezone.now()  # the lost ones were made due just now
    due = (
        Delivery.objects.filter(status=Status.PENDING, lease_owner="", next_attempt_at__lte=now)
        .filter(Q(endpoint__breaker_state=Endpoint.BreakerState.CLOSED) | Q(endpoint__breaker_probe_at__lte=now))
        .count()
    )
    if due or lost:
        pump_wake()
    if event_ids or due or lost:
        logger.info("webhooks sweep queued events=%s deliveries=%s lost=%s", len(event_ids), due, lost)
    return {"events": len(event_ids), "deliveries": due, "lost": lost}
