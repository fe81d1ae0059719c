"""Delivering: two lanes, each a sending loop whose requests overlap their waits on one libcurl multi handle.

The fast lane is the fan-out task: it claims new events, creates their deliveries and sends the first
attempts to endpoints in the fast lane; while requests wait it keeps claiming new events, so a slot that
waits on a slow receiver still serves every other tenant. A request unanswered after
WEBHOOKS_SLOW_AFTER_SECONDS stops counting against the lane's WEBHOOKS_SEND_CONCURRENCY, and its endpoint's
next deliveries go to the slow lane. The slow lane (one loop at a time, `deliveries_pump`) sends retries,
deliveries to slow or failing endpoints and breaker probes, at most WEBHOOKS_ENDPOINT_CONCURRENCY in
flight per endpoint. Each outcome is written as it arrives, so a retry is counted from the end of its own
attempt and a 410 disables at once, whatever its batch-mates do.

Every attempt is recorded as started, and its delivery leased (platform_site/leases.py), before the request
goes out; a worker that dies leaves the attempt `started` until its lease runs out, then the sweeper marks
it lost and the delivery is sent again, as an attempt of its own.
"""

import logging
import time
import uuid
from collections import Counter, deque
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone

from platform_site import metrics
from platform_site.leases import Lease

from . import outbox, persistence, policy, signing
from .endpoints import endpoint_signing_secrets
from .http import Request, Response, client
from .models import Attempt, Delivery, Endpoint, Event
from .outbox import EndpointRow, event_body
from .queueing import enqueue
from .ssrf import BlockedDestination, destination_check

logger = logging.getLogger(__name__)

Status, Lane, BreakerState = Delivery.Status, Endpoint.Lane, Endpoint.BreakerState
_CLAIM_EVERY_SECONDS = 0.25  # how often a loop whose requests wait looks for new work
_FLUSH_ROWS = 100


def _tasks():
    from . import tasks  # tasks import this module: imported when first queued

    return tasks


class _NewDelivery:
    """A delivery the fan-out creates: Delivery's columns as plain attributes. The fan-out builds no model
    instances: Model.__init__ for the endpoints and deliveries was the largest part of its own Python."""

    __slots__ = ("id", "event", "endpoint", "status", "attempt_count", "next_attempt_at", "queued_until",
                 "last_attempt_at", "created_at", "finished_at", "lease_owner", "lease_expires_at")  # fmt: skip
    msg_id = Delivery.msg_id  # the same property: it reads only `id`

    def __init__(self, event: Event, endpoint: EndpointRow, now: datetime):
        # The id (the webhook-id receivers deduplicate on) follows from event and endpoint.
        self.id = uuid.uuid5(event.pk, str(endpoint.id))
        self.event, self.endpoint = event, endpoint
        self.status, self.attempt_count = Status.PENDING, 0
        self.next_attempt_at = self.created_at = now
        self.queued_until = now + timedelta(seconds=settings.WEBHOOKS_REQUEUE_AFTER_SECONDS)
        self.last_attempt_at = self.finished_at = self.lease_expires_at = None
        self.lease_owner = ""

    pk = property(lambda self: self.id)
    event_id = property(lambda self: self.event.pk)
    endpoint_id = property(lambda self: self.endpoint.id)

    def as_model(self) -> Delivery:
        return Delivery(
            **{name: getattr(self, name) for name in ("id", "event_id", "endpoint_id", *self.__slots__[3:])}
        )


def _started_attempt(delivery, now: datetime, manual: bool) -> dict:
    return {"delivery_id": delivery.pk, "number": delivery.attempt_count, "started_at": now, "duration_ms": 0,
            "status_code": None, "succeeded": False, "error": "", "response_excerpt": "", "manual": manual,
            "state": Attempt.State.STARTED}  # fmt: skip


class _Flight:
    __slots__ = ("delivery", "number", "manual", "since", "slow", "host")

    def __init__(self, delivery, manual: bool):
        self.delivery, self.number, self.manual = delivery, delivery.attempt_count, manual
        self.since, self.slow, self.host = time.monotonic(), False, None


class _Loop:
    """Deliveries this loop holds under one lease: started on one multi handle, outcomes written as they
    arrive (at most WEBHOOKS_OUTCOME_FLUSH_SECONDS later, a statement for all that arrived meanwhile)."""

    def __init__(self):
        self.owner = uuid.uuid4().hex
        self.lease = Lease(Delivery, None, self.owner, settings.WEBHOOKS_LEASE_SECONDS)
        self.session = client().session()
        self.waiting: deque[_Flight] = deque()
        self.flying: dict[object, _Flight] = {}
        self.held: Counter = Counter()  # per endpoint: waiting + in flight
        self.in_air: Counter = Counter()  # per endpoint and per (host, port): in flight
        self.done: list[tuple[_Flight, Response]] = []
        self.done_since: float | None = None
        self._secrets: dict = {}
        self._destinations: dict = {}
        self._bodies: dict = {}

    def busy(self) -> bool:
        return bool(self.waiting or self.flying or self.done)

    def room(self, endpoint_id) -> int:
        return settings.WEBHOOKS_ENDPOINT_CONCURRENCY - self.held[endpoint_id]

    def full(self) -> bool:
        return len(self.waiting) >= settings.WEBHOOKS_BATCH_SIZE

    def endpoints_held(self) -> set:
        return {endpoint_id for endpoint_id, count in self.held.items() if count}

    def start(self, deliveries: list, *, manual: bool = False) -> None:
        for delivery in deliveries:
            self.waiting.append(_Flight(delivery, manual))
            self.held[delivery.endpoint_id] += 1
        self._fill()

    def _destination(self, delivery):
        """The endpoint's checked address (the connection is pinned to it) or the guard's refusal; with its
        secrets, resolved once per loop."""
        endpoint_id = delivery.endpoint_id
        if endpoint_id not in self._destinations:
            self._secrets[endpoint_id] = endpoint_signing_secrets(delivery.endpoint)
            try:
                self._destinations[endpoint_id] = destination_check(delivery.endpoint.url)
            except BlockedDestination as exc:
                self._destinations[endpoint_id] = exc
        return self._destinations[endpoint_id]

    def _request(self, delivery, destination) -> Request:
        if delivery.event_id not in self._bodies:
            self._bodies[delivery.event_id] = event_body(delivery.event)
        body = self._bodies[delivery.event_id]
        headers = signing.headers(
            secrets_=self._secrets[delivery.endpoint_id], msg_id=delivery.msg_id, timestamp=int(time.time()), body=body
        )
        return Request(destination, body, headers)

    def _fill(self) -> None:
        """Start waiting requests while the lane has room: at most WEBHOOKS_SEND_CONCURRENCY that are not
        slow yet, WEBHOOKS_ENDPOINT_CONCURRENCY per endpoint and WEBHOOKS_POOL_MAXSIZE per host (libcurl
        would queue more, their connect time-out running); the others wait their turn here."""
        active = sum(1 for flight in self.flying.values() if not flight.slow)
        capped, cap, host_cap = deque(), settings.WEBHOOKS_ENDPOINT_CONCURRENCY, settings.WEBHOOKS_POOL_MAXSIZE
        while self.waiting and active < settings.WEBHOOKS_SEND_CONCURRENCY:
            flight = self.waiting.popleft()
            delivery = flight.delivery
            destination = self._destination(delivery)
            if isinstance(destination, BlockedDestination):
                error = f"refused by the SSRF guard: {destination}"[:500]
                self._finished(flight, Response(None, "", error, 0, None, time.time()))
                continue
            host = (destination.host, destination.port)
            if self.in_air[delivery.endpoint_id] >= cap or self.in_air[host] >= host_cap:
                capped.append(flight)
                continue
            self.session.add(self._request(delivery, destination), delivery.pk)
            flight.since, flight.host = time.monotonic(), host
            self.flying[delivery.pk] = flight
            self.in_air[delivery.endpoint_id] += 1
            self.in_air[host] += 1
            active += 1
        self.waiting.extendleft(reversed(capped))

    def _finished(self, flight: _Flight, response: Response) -> None:
        self.held[flight.delivery.endpoint_id] -= 1
        if not self.done:
            self.done_since = time.monotonic()
        self.done.append((flight, response))

    def step(self, timeout: float) -> None:
        """Wait at most `timeout` for requests to finish; write the outcomes that are due; renew the lease."""
        if self.done:
            timeout = min(
                timeout, max(0.0, self.done_since + settings.WEBHOOKS_OUTCOME_FLUSH_SECONDS - time.monotonic())
            )
        for key, response in self.session.poll(timeout) if self.flying else ():
            flight = self.flying.pop(key)
            self.in_air[flight.delivery.endpoint_id] -= 1
            self.in_air[flight.host] -= 1
            self._finished(flight, response)
        slow_since, newly_slow = time.monotonic() - settings.WEBHOOKS_SLOW_AFTER_SECONDS, set()
        for flight in self.flying.values():
            if not flight.slow and flight.since < slow_since:
                flight.slow = True
                newly_slow.add(flight.delivery.endpoint_id)
        if newly_slow:  # their next deliveries go to the slow lane, from every worker's fan-out
            Endpoint.objects.filter(pk__in=newly_slow, lane=Lane.FAST).update(lane=Lane.SLOW)
        self._fill()
        if self.done and (
            len(self.done) >= _FLUSH_ROWS
            or not self.flying
            or time.monotonic() - self.done_since >= settings.WEBHOOKS_OUTCOME_FLUSH_SECONDS
        ):
            self.flush()
        if self.flying or self.waiting:
            self.lease.renew_if_due()

    def flush(self) -> None:
        done, self.done = self.done, []
        if done:
            _outcomes_write(self.owner, done)

    def drain(self) -> None:
        """Send and write everything this loop holds."""
        while self.busy():
            self.step(1.0)

    def close(self) -> None:
        self.session.close()


def _outcomes_write(owner: str, done: list[tuple[_Flight, Response]]) -> None:
    """Write finished attempts, their deliveries' fate and their endpoints' state in one transaction; queue
    the slow lane for the retries (each counted from the end of its own attempt) and opened breakers."""
    now = timezone.now()
    results = [(flight, response, datetime.fromtimestamp(response.started, tz=UTC)) for flight, response in done]
    wake_at = None
    with transaction.atomic():
        verdicts = policy.endpoints_record([(f.delivery.endpoint, r, started) for f, r, started in results], now=now)
        deliveries, attempts = [], []
        for flight, response, started_at in results:
            delivery, succeeded = flight.delivery, policy.succeeded(response)
            ended_at = started_at + timedelta(milliseconds=response.duration_ms)
            delay = None
            if not succeeded and delivery.endpoint_id not in verdicts.disabled:
                delay = policy.next_delay(attempts_made=flight.number, response=response)
            row = {"id": delivery.pk, "status": Status.SUCCEEDED if succeeded else Status.FAILED,
                   "next_attempt_at": None, "queued_until": None, "finished_at": ended_at}  # fmt: skip
            if delay is not None:
                next_at = ended_at + timedelta(seconds=delay)
                row.update(status=Status.PENDING, next_attempt_at=next_at, finished_at=None)
                wake_at = min(wake_at or next_at, next_at)
            deliveries.append(row)
            attempts.append({
                "delivery_id": delivery.pk, "number": flight.number, "state": Attempt.State.FINISHED,
                "started_at": started_at, "duration_ms": response.duration_ms, "status_code": response.status,
                "succeeded": succeeded, "response_excerpt": persistence.text(response.excerpt),
                "error": persistence.text(response.error)
                or ("" if succeeded or response.status is None else f"HTTP {response.status}"),
            })  # fmt: skip
            metrics.record_webhook_delivery(
                outcome="delivered" if succeeded else ("retrying" if delay is not None else "failed"),
                seconds=response.duration_ms / 1000,
            )
            logger.info(
                "webhook attempt delivery=%s endpoint=%s status=%s error=%s duration_ms=%s",
                delivery.pk, delivery.endpoint_id, response.status, response.error or "-", response.duration_ms,
            )  # fmt: skip
        persistence.outcomes_write(owner=owner, deliveries=deliveries, attempts=attempts)
        for probe_at in verdicts.opened.values():
            wake_at = min(wake_at or probe_at, probe_at)
        if verdicts.closed:  # the deliveries that waited for the breaker go now
            wake_at = now
    if wake_at is not None:
        transaction.on_commit(lambda: pump_wake(at=wake_at))


# --- the fast lane: fan-out and first attempts -----------------------------------------------------


def _fan_out_claim(loop: _Loop | None, *, event_id=None, limit: int) -> int:
    """Claim events, create their deliveries and start the first attempts the fast lane takes (with a loop);
    the others wait for the slow lane. Returns how many events were claimed."""
    with transaction.atomic():
        claimed = outbox.events_claim(event_id=event_id, limit=limit)
        if not claimed:
            return 0
        deliveries = [_NewDelivery(event, endpoint, event.fanned_out_at)
                      for event, endpoints in claimed for endpoint in endpoints]  # fmt: skip
        now = timezone.now()
        sending, attempts, parked = [], [], 0
        for delivery in deliveries:
            endpoint = delivery.endpoint
            if not endpoint.is_active:  # a ping to a disabled endpoint
                delivery.status, delivery.finished_at, delivery.next_attempt_at = Status.FAILED, now, None
            elif loop is not None and endpoint.lane == Lane.FAST and endpoint.breaker_state == BreakerState.CLOSED:
                delivery.attempt_count, delivery.last_attempt_at = 1, now
                delivery.lease_owner = loop.owner
                delivery.lease_expires_at = now + timedelta(seconds=settings.WEBHOOKS_LEASE_SECONDS)
                sending.append(delivery)
                attempts.append(_started_attempt(delivery, now, manual=False))
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
    loop, total = _Loop(), 0
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


def _pump_lock_key() -> str:
    return f"webhooks:slow-lane:{settings.WEBHOOKS_QUEUE}"


def pump_wake(at: datetime | None = None) -> None:
    """Queue the slow lane's loop (now, or when `at` comes, if within WEBHOOKS_COUNTDOWN_MAX_SECONDS; later
    work is the sweeper's). A loop already running takes the work itself."""
    countdown = None if at is None else max(0.0, (at - timezone.now()).total_seconds()) + 0.05
    if countdown is not None and countdown > settings.WEBHOOKS_COUNTDOWN_MAX_SECONDS:
        return
    enqueue(_tasks().deliveries_pump_task, countdown=countdown)


def _claim(loop: _Loop, queryset, *, now: datetime, manual: bool, respect_breaker: bool) -> list:
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
        Attempt.objects.bulk_create([Attempt(**_started_attempt(d, now, manual)) for d in chosen])
    loop.start(chosen, manual=manual)
    return chosen


def _slow_lane_due(loop: _Loop, now: datetime):
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
    lock = _pump_lock_key()
    try:
        if not cache.add(lock, 1, timeout=settings.WEBHOOKS_LEASE_SECONDS):
            return 0
    except Exception as exc:  # noqa: BLE001 - the lock only saves worker slots; the leases keep it correct
        logger.warning("webhooks: the cache is unavailable (%s); running the slow lane unlocked", type(exc).__name__)
    loop, sent, claimed = _Loop(), 0, 0
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
    loop = _Loop()
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
