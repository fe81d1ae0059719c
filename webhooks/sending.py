"""A sending loop: deliveries held under one lease, their requests overlapping their waits on one libcurl
multi handle, their outcomes written as they arrive (webhooks/delivery.py runs the lanes' loops)."""

import logging
import time
import uuid
from collections import Counter, deque
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from core.leases import Lease, lease_owner_token
from observability import metrics

from . import persistence, policy, signing
from .endpoints import endpoint_signing_secrets
from .http import Request, Response, client
from .models import Attempt, Delivery, Endpoint, Event
from .outbox import EndpointRow, event_body
from .ssrf import BlockedDestination, destination_check

logger = logging.getLogger(__name__)

Status, Lane = Delivery.Status, Endpoint.Lane
_FLUSH_ROWS = 200  # an outcome statement per this many (or per WEBHOOKS_OUTCOME_FLUSH_SECONDS)
# A tenant is congested in this process while a request of its has been unanswered for more than
# WEBHOOKS_SLOW_AFTER_SECONDS, and WEBHOOKS_SLOW_LANE_SECONDS after, unless a request of its is answered in
# time meanwhile: the fan-out then sends its new deliveries by the slow lane. (Short-lived: on a starved CPU
# a healthy tenant's request can look slow for a second.)
_congested: dict = {}  # tenant id -> time.monotonic() when its congestion ends; shared by the process's loops


def tenant_congested(tenant_id) -> bool:
    """Whether a request of the tenant's has been unanswered too long lately (in this process): its new
    deliveries then overflow to the slow lane, so its hanging receivers cannot fill the fast lane's loops."""
    until = _congested.get(tenant_id)
    if until is not None and until <= time.monotonic():
        _congested.pop(tenant_id, None)
        until = None
    return until is not None


class NewDelivery:
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


def started_attempt(delivery, now: datetime, manual: bool) -> dict:
    return {"delivery_id": delivery.pk, "number": delivery.attempt_count, "started_at": now, "duration_ms": 0,
            "status_code": None, "succeeded": False, "error": "", "response_excerpt": "", "manual": manual,
            "state": Attempt.State.STARTED}  # fmt: skip


class _Flight:
    __slots__ = ("delivery", "number", "manual", "since", "slow", "moved")

    def __init__(self, delivery, manual: bool):
        self.delivery, self.number, self.manual = delivery, delivery.attempt_count, manual
        self.since, self.slow, self.moved = time.monotonic(), False, False


class SendingLoop:
    """Deliveries this loop holds under one lease: started on one multi handle, outcomes written as they
    arrive (at most WEBHOOKS_OUTCOME_FLUSH_SECONDS later, a statement for all that arrived meanwhile)."""

    def __init__(self):
        self.owner = lease_owner_token()
        self.lease = Lease(Delivery, None, self.owner, settings.WEBHOOKS_LEASE_SECONDS)
        self.session = client().session()
        self.waiting: deque[_Flight] = deque()
        self.flying: dict[object, _Flight] = {}
        self.held: Counter = Counter()  # per endpoint: waiting + in flight
        self.in_air: Counter = Counter()  # per endpoint: in flight
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
        """Whether the loop holds enough to send that it stops claiming. Congested tenants' deliveries do not
        count: the loop claims no more of theirs (they overflow to the slow lane), and must keep claiming
        other tenants' while theirs wait on hanging receivers."""
        if len(self.waiting) < settings.WEBHOOKS_BATCH_SIZE:
            return False
        uncongested = sum(1 for flight in self.waiting if not tenant_congested(flight.delivery.endpoint.tenant_id))
        return uncongested >= settings.WEBHOOKS_BATCH_SIZE

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
        slow yet, WEBHOOKS_ENDPOINT_CONCURRENCY per endpoint and what the session allows per host (up to
        WEBHOOKS_POOL_MAXSIZE, ramped up on new connections; libcurl would queue more, their connect time-out
        running); the others wait their turn here."""
        active = sum(1 for flight in self.flying.values() if not flight.slow)
        capped, cap = deque(), settings.WEBHOOKS_ENDPOINT_CONCURRENCY
        while self.waiting and active < settings.WEBHOOKS_SEND_CONCURRENCY:
            flight = self.waiting.popleft()
            delivery = flight.delivery
            destination = self._destination(delivery)
            if isinstance(destination, BlockedDestination):
                error = f"refused by the SSRF guard: {destination}"[:500]
                self._finished(flight, Response(None, "", error, 0, None, time.time()))
                continue
            if self.in_air[delivery.endpoint_id] >= cap or self.session.room(destination) <= 0:
                capped.append(flight)
                continue
            self.session.add(self._request(delivery, destination), delivery.pk)
            flight.since = time.monotonic()
            self.flying[delivery.pk] = flight
            self.in_air[delivery.endpoint_id] += 1
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
        slow_ms = settings.WEBHOOKS_SLOW_AFTER_SECONDS * 1000
        for key, response in self.session.poll(timeout) if self.flying else ():
            flight = self.flying.pop(key)
            self.in_air[flight.delivery.endpoint_id] -= 1
            if response.status is not None and response.duration_ms < slow_ms:
                _congested.pop(flight.delivery.endpoint.tenant_id, None)  # answered in time
            self._finished(flight, response)
        now = time.monotonic()
        slow_since, lane_since = now - settings.WEBHOOKS_SLOW_AFTER_SECONDS, now - settings.WEBHOOKS_SLOW_LANE_SECONDS
        newly_slow = set()
        for flight in self.flying.values():
            flight.slow = flight.slow or flight.since < slow_since  # stops counting against the lane
            if flight.slow:
                _congested[flight.delivery.endpoint.tenant_id] = now + settings.WEBHOOKS_SLOW_LANE_SECONDS
            if not flight.moved and flight.since < lane_since:
                flight.moved = True
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
            try:
                self.lease.renew_if_due()
            except DatabaseError as exc:  # e.g. a deadlock with a bulk update of these rows: renew next time
                logger.warning("webhooks: lease renewal deferred (%s)", type(exc).__name__)

    def flush(self) -> None:
        done, self.done = self.done, []
        if done:
            outcomes_write(self.owner, done)

    def drain(self) -> None:
        """Send and write everything this loop holds."""
        while self.busy():
            self.step(1.0)

    def close(self) -> None:
        self.session.close()


def outcomes_write(owner: str, done: list[tuple[_Flight, Response]]) -> None:
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
        from .delivery import pump_wake  # the slow lane's task, which uses this module

        transaction.on_commit(lambda: pump_wake(at=wake_at))
