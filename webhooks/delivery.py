"""Delivering: two lanes, each a sending loop whose requests overlap their waits on one libcurl multi handle.

The fast lane is the fan-out task: it claims new events, creates their deliveries and sends the first
attempts to endpoints in the fast lane; while requests wait it keeps claiming new events, so a slot that
waits on a slow receiver still serves every other tenant. A request unanswered after
WEBHOOKS_SLOW_AFTER_SECONDS stops counting against the lane's WEBHOOKS_SEND_CONCURRENCY; after
WEBHOOKS_SLOW_LANE_SECONDS its endpoint's next deliveries go to the slow lane. The slow lane (one loop at a time, `deliveries_pump`) sends retries,
deliveries to slow or failing endpoints and breaker probes, at most WEBHOOKS_ENDPOINT_CONCURRENCY in
flight per endpoint. Each outcome is written as it arrives, so a retry is counted from the end of its own
attempt and a 410 disables at once, whatever its batch-mates do.

Every attempt is recorded as started, and its delivery leased (core/leases.py), before the request
goes out; a worker that dies leaves the attempt `started` until its lease runs out, then the sweeper marks
it lost and the delivery is sent again, as an attempt of its own.
"""

import logging
import time
from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone

from observability import metrics

from . import outbox, persistence, policy
from .models import Attempt, Delivery, Endpoint
from .queueing import enqueue
from .sending import NewDelivery, SendingLoop, started_attempt, tenant_congested

logger = logging.getLogger(__name__)

Status, Lane, BreakerState = Delivery.Status, Endpoint.Lane, Endpoint.BreakerState
_CLAIM_EVERY_SECONDS = 0.25  # how often a loop whose requests wait looks for new work


def _tasks():
    from . import tasks  # tasks import this module: imported when first queued

    return tasks


# --- the fast lane: fan-out and first attempts -----------------------------------------------------


def _fan_out_claim(loop: SendingLoop | None, *, event_id=None, limit: int) -> int:
    """Claim events, create their deliveries and start the first attempts the fast lane takes (with a loop);
    the others wait for the slow lane. Returns how many events were claimed."""
    with transaction.atomic():
        claimed = outbox.events_claim(event_id=event_id, limit=limit)
        if not claimed:
            return 0
        deliveries = [NewDelivery(event, endpoint, event.fanned_out_at)
                      for event, endpoints in claimed for endpoint in endpoints]  # fmt: skip
        now = timezone.now()
        sending, attempts, parked = [], [], 0
        for delivery in deliveries:
            endpoint = delivery.endpoint
            if not endpoint.is_active:  # a ping to a disabled endpoint
                delivery.status, delivery.finished_at, delivery.next_attempt_at = Status.FAILED, now, None
            elif (
                loop is not None
                and endpoint.lane == Lane.FAST
                and endpoint.breaker_state == BreakerState.CLOSED
                and not tenant_congested(endpoint.tenant_id)
            ):
                delivery.attempt_count, delivery.last_attempt_at = 1, now
                delivery.lease_owner = loop.owner
                delivery.lease_expires_at = now + timedelta(seconds=settings.WEBHOOKS_LEASE_SECONDS)
                sending.append(delivery)
                attempts.append(started_attempt(delivery, now, manual=False))
            else:
                parked += 1
        persistence.deliveries_insert(deliveries, attempts)
        if parked:
            transaction.on_commit(pump_wake)
    if sending:
        loop.start(sending)
    return len(claimed)


def _fan_out_loop(*, event_id=None, limit: int, more: bool) -> int:
    """Claim events and send their first attempts; while requests wait, claim new events every
    _CLAIM_EVERY_SECONDS (for WEBHOOKS_LOOP_SECONDS at most). Returns how many events were claimed."""
    loop, total = SendingLoop(), 0
    deadline = time.monotonic() + settings.WEBHOOKS_LOOP_SECONDS
    next_claim = 0.0
    try:
        while True:
            now = time.monotonic()
            if now >= next_claim and now < deadline and not loop.full():
                last = _fan_out_claim(loop, event_id=event_id, limit=limit)
                total += last
                if last == limit and more:  # a backlog: the other worker slots take the next events meanwhile
                    enqueue(_tasks().events_fan_out_task)
                # The sweeper's task sends its one event; the others look again while requests wait.
                next_claim = deadline if event_id is not None else now + _CLAIM_EVERY_SECONDS
            if not loop.busy():
                break
            loop.step(min(_CLAIM_EVERY_SECONDS, max(0.0, next_claim - time.monotonic())))
    finally:
        try:
            loop.drain()
        finally:
            loop.close()
    return total


def events_deliver_pending() -> int:
    """The fan-out task: fan out the oldest events waiting (WEBHOOKS_FAN_OUT_EVENTS at a time) and send
    their first attempts; a full claim queues the next task at once, so other worker slots share a backlog."""
    outbox.cache_delete(outbox.fan_out_queued_key())  # before the claim: an event committed from now on queues a task
    return _fan_out_loop(limit=settings.WEBHOOKS_FAN_OUT_EVENTS, more=True)


def event_deliver(*, event_id) -> int:
    """Fan one event out and send its first attempts (the sweeper's task); idempotent. Returns how many
    deliveries it made."""
    before = Delivery.objects.filter(event_id=event_id).count()
    _fan_out_loop(event_id=event_id, limit=1, more=False)
    return Delivery.objects.filter(event_id=event_id).count() - before


def event_fan_out(*, event_id) -> list:
    """Create one pending delivery per active subscribed endpoint, for the slow lane to send; idempotent
    (an event is fanned out once). For operators and tests."""
    with transaction.atomic():
        before = set(Delivery.objects.filter(event_id=event_id).values_list("pk", flat=True))
        _fan_out_claim(None, event_id=event_id, limit=1)
        return [
            pk for pk in Delivery.objects.filter(event_id=event_id).values_list("pk", flat=True) if pk not in before
        ]


# --- the slow lane: retries, slow and failing endpoints, breaker probes --------------------------


def pump_lock_key() -> str:
    return f"webhooks:slow-lane:{settings.WEBHOOKS_QUEUE}"


def pump_wake(at: datetime | None = None) -> None:
    """Queue the slow lane's loop (now, or when `at` comes, if within WEBHOOKS_COUNTDOWN_MAX_SECONDS; later
    work is the sweeper's). A loop already running takes the work itself."""
    countdown = None if at is None else max(0.0, (at - timezone.now()).total_seconds()) + 0.05
    if countdown is not None and countdown > settings.WEBHOOKS_COUNTDOWN_MAX_SECONDS:
        return
    enqueue(_tasks().deliveries_pump_task, countdown=countdown)


def _claim(loop: SendingLoop, queryset, *, now: datetime, manual: bool, respect_breaker: bool) -> list:
    """Lease the due deliveries of `queryset` the loop may send (caps, breaker) and start their attempts."""
    with transaction.atomic():
        candidates = list(
            queryset.select_for_update(of=("self",), skip_locked=True).select_related("endpoint", "event")
            .filter(status=Status.PENDING, lease_owner="").order_by("next_attempt_at")[: settings.WEBHOOKS_BATCH_SIZE]
        )  # fmt: skip
        chosen, gone, probes = [], [], []
        taken: Counter = Counter()
        for delivery in candidates:
            endpoint = delivery.endpoint
            if not endpoint.is_active:
                gone.append(delivery.pk)
            elif not respect_breaker:
                chosen.append(delivery)
            elif endpoint.breaker_state == BreakerState.CLOSED:
                if loop.room(endpoint.pk) > taken[endpoint.pk]:
                    taken[endpoint.pk] += 1
                    chosen.append(delivery)
            elif policy.probe_due(endpoint, now=now) and endpoint.pk not in probes:
                probes.append(endpoint.pk)
                chosen.append(delivery)
        if gone:
            Delivery.objects.filter(pk__in=gone).update(status=Status.FAILED, finished_at=now, next_attempt_at=None)
        if probes:
            # Half-open until the probe's outcome; if its worker dies, another probe after one lease.
            Endpoint.objects.filter(pk__in=probes).update(
                breaker_state=BreakerState.HALF_OPEN,
                breaker_probe_at=now + timedelta(seconds=settings.WEBHOOKS_LEASE_SECONDS),
            )
            for _ in probes:
                metrics.record_webhook_breaker(transition="probe")
        if not chosen:
            return []
        expires = now + timedelta(seconds=settings.WEBHOOKS_LEASE_SECONDS)
        for delivery in chosen:
            delivery.attempt_count += 1
            delivery.last_attempt_at, delivery.lease_owner, delivery.lease_expires_at = now, loop.owner, expires
        Delivery.objects.bulk_update(chosen, ["attempt_count", "last_attempt_at", "lease_owner", "lease_expires_at"])
        Attempt.objects.bulk_create([Attempt(**started_attempt(d, now, manual)) for d in chosen])
    loop.start(chosen, manual=manual)
    return chosen


def _slow_lane_due(loop: SendingLoop, now: datetime):
    waiting_for_probe = ~Q(endpoint__breaker_state=BreakerState.CLOSED) & Q(endpoint__breaker_probe_at__gt=now)
    return (
        Delivery.objects.filter(next_attempt_at__lte=now)
        .exclude(waiting_for_probe)
        .exclude(endpoint_id__in=[pk for pk in loop.endpoints_held() if loop.room(pk) <= 0])
    )


def deliveries_pump() -> int:
    """The slow lane: one loop at a time (a cache lock; without the cache, loops share the work through the
    leases). Sends what is due, looking for more every _CLAIM_EVERY_SECONDS while requests wait; when idle,
    queues itself for the next due delivery or probe. Returns how many attempts it started."""
    lock = pump_lock_key()
    try:
        locked = cache.add(lock, 1, timeout=settings.WEBHOOKS_LEASE_SECONDS)
    except Exception as exc:  # noqa: BLE001 - the lock only saves worker slots; the leases keep it correct
        logger.warning("webhooks: the cache is unavailable (%s); running the slow lane unlocked", type(exc).__name__)
        locked = True
    if not locked:
        _pump_follow(lock)
        return 0
    loop, sent, claimed = SendingLoop(), 0, 0
    deadline = time.monotonic() + settings.WEBHOOKS_LOOP_SECONDS
    next_claim = 0.0
    try:
        while True:
            if time.monotonic() >= next_claim and time.monotonic() < deadline:
                now = timezone.now()
                claimed = len(_claim(loop, _slow_lane_due(loop, now), now=now, manual=False, respect_breaker=True))
                sent += claimed
                next_claim = time.monotonic() + _CLAIM_EVERY_SECONDS
                outbox.cache_touch(lock, settings.WEBHOOKS_LEASE_SECONDS)
            if not loop.busy():
                if not claimed or time.monotonic() >= deadline:
                    break
                continue
            loop.step(max(0.0, min(_CLAIM_EVERY_SECONDS, next_claim - time.monotonic())))
    finally:
        try:
            loop.drain()
        finally:
            loop.close()
            outbox.cache_delete(lock)
    _pump_schedule_next(ran_out=time.monotonic() >= deadline)
    return sent


def _pump_follow(lock: str) -> None:
    """The slow lane is held. A live loop queues the next one when it ends; but if its worker died, its lock
    lasts until it runs out and nobody queues anything until the sweeper's next round. So a refused loop
    queues one loop for when the lock runs out (one at a time: a mark that lasts as long as the lock)."""
    try:
        seconds = max((cache.pttl(lock) or 0) / 1000, _CLAIM_EVERY_SECONDS)
    except Exception:  # noqa: BLE001 - a cache without pttl() (not Redis), or none: assume a whole lease
        seconds = float(settings.WEBHOOKS_LEASE_SECONDS)
    if outbox.cache_add(f"{lock}:follow", seconds):
        pump_wake(at=timezone.now() + timedelta(seconds=seconds))


def _pump_schedule_next(*, ran_out: bool) -> None:
    """Queue the slow lane for its next work: the earliest due delivery of a closed breaker or probe."""
    now = timezone.now()
    pending = Delivery.objects.filter(status=Status.PENDING, lease_owner="")
    due = [
        pending.filter(endpoint__breaker_state=BreakerState.CLOSED).aggregate(at=Min("next_attempt_at"))["at"],
        Endpoint.objects.exclude(breaker_state=BreakerState.CLOSED)
        .filter(deliveries__status=Status.PENDING)
        .aggregate(at=Min("breaker_probe_at"))["at"],
    ]
    due = [at for at in due if at is not None]
    if ran_out or due:
        # Never sooner than a claim interval: what is due but locked by another worker must not spin.
        earliest = max(min(due) if due else now, now + timedelta(seconds=_CLAIM_EVERY_SECONDS))
        pump_wake(at=earliest)


def deliveries_attempt(*, delivery_ids: list, manual: bool = False) -> dict[str, str]:
    """Make the next attempt of each pending delivery given (due or not: an operator asked), breaker or not;
    idempotent: a delivery another worker holds is skipped. Returns each one's status afterwards."""
    loop = SendingLoop()
    try:
        held = [delivery.pk for delivery in _claim(
            loop, Delivery.objects.filter(pk__in=delivery_ids), now=timezone.now(), manual=manual, respect_breaker=False
        )]  # fmt: skip
        loop.drain()
    finally:
        loop.close()
    return {str(pk): status for pk, status in Delivery.objects.filter(pk__in=held).values_list("pk", "status")}


def delivery_attempt(*, delivery_id, manual: bool = False) -> str:
    """One delivery's next attempt (see deliveries_attempt); returns its status, or why nothing was sent."""
    return deliveries_attempt(delivery_ids=[delivery_id], manual=manual).get(str(delivery_id), "skipped")
