"""Writes for webhooks: recording events (the outbox), endpoints, and delivering.

`event_record` is the one entry point for other apps: call it inside the transaction of the change
that caused the event; the fan-out is queued only once that transaction commits.
"""

import functools
import json
import logging
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from core.exceptions import ApplicationError
from observability import metrics
from tenants.models import Tenant

from . import catalogue, encryption, signing
from .http import Request, Response, client
from .models import Attempt, Delivery, Endpoint, Event, SignatureScheme
from .ssrf import BlockedDestination, destination_check

logger = logging.getLogger(__name__)


def _invalid(field: str, message: str, *, code: str = "invalid", status_code: int = 400) -> ApplicationError:
    return ApplicationError(code, "The request is invalid." if code == "invalid" else message,
                            fields={field: [message]}, status_code=status_code)  # fmt: skip


def _enqueue(task_name: str, *args, countdown: float | None = None) -> bool:
    """Queue a webhooks task; if the broker is down, log it and let the sweeper queue it later."""
    from . import tasks

    try:
        getattr(tasks, task_name).apply_async(args, queue=settings.WEBHOOKS_QUEUE, countdown=countdown, retry=False)
    except Exception as exc:  # the rows are in the database: webhooks_sweep re-queues them, nothing is lost
        about = args[0] if args else "pending events"
        logger.warning("could not queue %s for %s (%s); the sweeper will retry", task_name, about, type(exc).__name__)
        return False
    return True


# --- events (the outbox) -------------------------------------------------------------------------


def event_record(*, tenant, type: str, data: dict, target_endpoint: Endpoint | None = None) -> Event:  # noqa: A002
    """Record a catalogued event in the caller's transaction; fanned out to endpoints after commit."""
    event_type = catalogue.EVENT_TYPES.get(type)
    if event_type is None:
        raise ValueError(f"unknown webhook event type {type!r}: add it to webhooks/catalogue.py")
    encoded = json.dumps(data, cls=DjangoJSONEncoder)
    if len(encoded.encode()) > settings.WEBHOOKS_MAX_PAYLOAD_BYTES:
        raise ApplicationError(
            "payload_too_large",
            f"The event payload is larger than {settings.WEBHOOKS_MAX_PAYLOAD_BYTES} bytes.",
            fields={"data": [f"At most {settings.WEBHOOKS_MAX_PAYLOAD_BYTES} bytes of JSON."]},
            status_code=413,
        )
    # No savepoint: inside the caller's transaction (the usual case) it cost two round trips per event,
    # and a database error here fails the caller's change anyway (the event belongs to it).
    with transaction.atomic(savepoint=False):
        # Most tenants subscribe to few events: an event nobody subscribes to is kept for the record but
        # costs no task. (An endpoint created before this commits but after this check misses it.)
        wanted = target_endpoint is not None or any(
            catalogue.subscribed(event_types, type)
            for event_types in Endpoint.objects.filter(tenant=tenant, is_active=True).values_list(
                "event_types", flat=True
            )
        )
        event = Event.objects.create(
            tenant=tenant,
            type=type,
            version=event_type.version,
            data=json.loads(encoded),
            target_endpoint=target_endpoint,
            fanned_out_at=None if wanted else timezone.now(),
        )
        if wanted:
            transaction.on_commit(_fan_out_wake)
    return event


def _fan_out_queued_key() -> str:
    return f"webhooks:fan-out-queued:{settings.WEBHOOKS_QUEUE}"


def _fan_out_wake() -> None:
    """Queue the fan-out task, unless one is queued and has not started: that one will find this event.

    The task clears the mark before it claims events, so an event committed after the mark was cleared
    queues another task. Without the cache (or the broker) an event is queued on its own, or swept."""
    try:
        queued = not cache.add(_fan_out_queued_key(), 1, timeout=settings.WEBHOOKS_REQUEUE_AFTER_SECONDS)
    except Exception as exc:
        logger.warning("webhooks: the cache is unavailable (%s); queueing a fan-out for this event", type(exc).__name__)
        queued = False
    if not queued and not _enqueue("events_fan_out_task"):
        _cache_delete(_fan_out_queued_key())  # the next event tries again


def _cache_delete(key: str) -> None:
    try:
        cache.delete(key)
    except Exception as exc:  # the mark expires by itself
        logger.warning("webhooks: could not clear %s (%s)", key, type(exc).__name__)


def event_body(event: Event) -> bytes:
    return json.dumps(
        {
            "id": str(event.pk),
            "type": event.type,
            "version": event.version,
            "timestamp": event.created_at.isoformat(),
            "tenant": str(event.tenant_id),
            "data": event.data,
        },
        separators=(",", ":"),
        cls=DjangoJSONEncoder,
    ).encode()


class _EndpointRow(NamedTuple):
    """What a delivery reads of its endpoint. The fan-out loads no more, and builds no model instances:
    Model.__init__ for the endpoints and deliveries was the largest part of the fan-out's own Python."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    url: str
    event_types: list
    is_active: bool
    secret_encrypted: str
    previous_secret_encrypted: str
    previous_secret_expires_at: datetime | None

    @property
    def pk(self) -> uuid.UUID:
        return self.id


class _NewDelivery:
    """A delivery the fan-out creates: Delivery's columns as plain attributes (see _EndpointRow)."""

    __slots__ = ("id", "event", "endpoint", "status", "attempt_count", "next_attempt_at", "queued_until",
                 "last_attempt_at", "created_at", "finished_at")  # fmt: skip
    msg_id = Delivery.msg_id  # the same property: it reads only `id`

    def __init__(self, event: Event, endpoint: _EndpointRow, now: datetime):
        # The id (the webhook-id receivers deduplicate on) follows from event and endpoint, so a fan-out
        # rolled back after its requests went out (a worker killed mid-batch) sends the same id again.
        self.id = uuid.uuid5(event.pk, str(endpoint.id))
        self.event, self.endpoint = event, endpoint
        self.status, self.attempt_count = Delivery.Status.PENDING, 0
        self.next_attempt_at = self.created_at = now
        self.queued_until = now + timedelta(seconds=settings.WEBHOOKS_REQUEUE_AFTER_SECONDS)
        self.last_attempt_at = self.finished_at = None

    pk = property(lambda self: self.id)
    event_id = property(lambda self: self.event.pk)
    endpoint_id = property(lambda self: self.endpoint.id)

    def as_model(self) -> Delivery:
        """The Delivery with every column as it stands now (before or after its first attempt)."""
        return Delivery(
            id=self.id, event_id=self.event_id, endpoint_id=self.endpoint_id, status=self.status,
            attempt_count=self.attempt_count, next_attempt_at=self.next_attempt_at, queued_until=self.queued_until,
            last_attempt_at=self.last_attempt_at, created_at=self.created_at, finished_at=self.finished_at,
        )  # fmt: skip


def _events_claim(*, event_id=None, limit: int = 1) -> list[tuple[Event, list[_EndpointRow]]]:
    """Lock events not fanned out yet (the one given, or up to `limit` of the oldest), mark them fanned
    out and read each one's subscribed endpoints, oldest event first; [] if none is left to claim.

    SKIP LOCKED keeps a duplicate task from waiting for the one at work; the rows stay locked (so an
    event is fanned out once) until the caller's transaction ends, and their marks roll back with it.
    `= ANY(ARRAY(subquery))` runs the locking subquery once (an InitPlan): as `IN (subquery)` a nested-loop
    plan rescans it, and each rescan skips the rows just claimed and returns more, past the LIMIT.
    An event's endpoints are its target (a ping) or its tenant's active ones, filtered by subscription.
    Two statements for all the events; the SQL and the decoding of its rows are PostgreSQL's, other
    databases (SQLite, embedded mode) take the ORM's way."""
    if connection.vendor != "postgresql":
        return _events_claim_portable(event_id=event_id, limit=limit)
    quote = connection.ops.quote_name
    event_fields = Event._meta.concrete_fields
    events_table, endpoints_table = quote(Event._meta.db_table), quote(Endpoint._meta.db_table)
    which = "fanned_out_at IS NULL AND id = %s" if event_id is not None else "fanned_out_at IS NULL"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {events_table} SET fanned_out_at = %s WHERE id = ANY(ARRAY(SELECT id FROM {events_table}"  # noqa: S608
            f" WHERE {which} ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED))"
            f" RETURNING {', '.join(quote(field.column) for field in event_fields)}",
            [timezone.now(), *([event_id] if event_id is not None else []), limit],
        )
        attnames = [field.attname for field in event_fields]
        events = [
            Event.from_db(connection.alias, attnames, [
                field.from_db_value(value, None, connection) if hasattr(field, "from_db_value") else value
                for field, value in zip(event_fields, row, strict=True)
            ])
            for row in cursor.fetchall()
        ]  # fmt: skip
        if not events:
            return []
        cursor.execute(
            f"SELECT {', '.join(quote(name) for name in _EndpointRow._fields)} FROM {endpoints_table}"  # noqa: S608
            " WHERE (tenant_id = ANY(%s::uuid[]) AND is_active) OR id = ANY(%s::uuid[])",
            [[event.tenant_id for event in events if not event.target_endpoint_id],
             [event.target_endpoint_id for event in events if event.target_endpoint_id]],
        )  # fmt: skip
        endpoints = [_EndpointRow._make(row) for row in cursor.fetchall()]
    endpoints = [endpoint._replace(event_types=json.loads(endpoint.event_types)) for endpoint in endpoints]
    return _subscribed(sorted(events, key=lambda event: event.created_at), endpoints)


def _events_claim_portable(*, event_id, limit: int) -> list[tuple[Event, list[_EndpointRow]]]:
    pending = Event.objects.select_for_update(skip_locked=True).filter(fanned_out_at__isnull=True)
    events = list((pending.filter(pk=event_id) if event_id is not None else pending).order_by("created_at")[:limit])
    if not events:
        return []
    now = timezone.now()
    Event.objects.filter(pk__in=[event.pk for event in events]).update(fanned_out_at=now)
    for event in events:
        event.fanned_out_at = now
    endpoints = Endpoint.objects.filter(
        Q(tenant_id__in=[event.tenant_id for event in events if not event.target_endpoint_id], is_active=True)
        | Q(pk__in=[event.target_endpoint_id for event in events if event.target_endpoint_id])
    )
    return _subscribed(events, [_EndpointRow._make(row) for row in endpoints.values_list(*_EndpointRow._fields)])


def _subscribed(events: list[Event], endpoints: list[_EndpointRow]) -> list[tuple[Event, list[_EndpointRow]]]:
    """Each event with the endpoints it goes to: its target, or its tenant's active subscribed ones."""
    by_id = {endpoint.id: endpoint for endpoint in endpoints}
    by_tenant: dict = {}
    for endpoint in endpoints:
        if endpoint.is_active:
            by_tenant.setdefault(endpoint.tenant_id, []).append(endpoint)
    return [
        (event, [by_id[event.target_endpoint_id]] if event.target_endpoint_id in by_id else [])
        if event.target_endpoint_id
        else (event, [e for e in by_tenant.get(event.tenant_id, ()) if catalogue.subscribed(e.event_types, event.type)])
        for event in events
    ]


def event_fan_out(*, event_id) -> list:
    """One delivery per active subscribed endpoint, each queued after commit; idempotent (an event is
    fanned out once). The fan-out task does more (event_deliver); this is for operators and tests."""
    with transaction.atomic():
        claimed = _events_claim(event_id=event_id)
        deliveries = Delivery.objects.bulk_create(
            [_NewDelivery(event, endpoint, event.fanned_out_at).as_model()
             for event, endpoints in claimed for endpoint in endpoints],
            ignore_conflicts=True,
        )  # fmt: skip
        delivery_ids = [delivery.pk for delivery in deliveries]
        transaction.on_commit(lambda: _enqueue_deliveries(delivery_ids))
    return delivery_ids


def event_deliver(*, event_id) -> int:
    """Fan one event out and make the first attempt of its deliveries (the sweeper's task); idempotent."""
    return _fan_out_and_deliver(event_id=event_id, limit=1)


def events_deliver_pending() -> int:
    """The fan-out task: fan out the oldest events waiting (up to WEBHOOKS_FAN_OUT_EVENTS) and make the
    first attempt of their deliveries; if that many were waiting, queue the next task at once, so the
    other worker processes take the next events while this one sends."""
    _cache_delete(_fan_out_queued_key())  # before the claim: an event committed from now on queues a task
    limit = settings.WEBHOOKS_FAN_OUT_EVENTS
    return _fan_out_and_deliver(event_id=None, limit=limit, more=lambda: _enqueue("events_fan_out_task"))


def _fan_out_and_deliver(*, event_id, limit: int, more=None) -> int:
    """Claim events and attempt their deliveries; returns how many deliveries were made.

    When the deliveries fit in one batch (nearly always), one transaction does it all: the locked event
    rows keep a duplicate task out while the requests go out, and the deliveries are inserted after them
    with their outcome, a few statements for the whole batch (_events_claim, _outcome_write). If the
    worker dies, it all rolls back and the events are fanned out again (same webhook-ids), so no delivery
    row is visible until its first attempt is over. Larger fan-outs commit and queue their deliveries
    first, so the rest need not wait for the first batch's requests.
    """
    batch = settings.WEBHOOKS_BATCH_SIZE
    with transaction.atomic():
        claimed = _events_claim(event_id=event_id, limit=limit)
        if more is not None and len(claimed) == limit:
            more()
        deliveries = [_NewDelivery(event, endpoint, event.fanned_out_at)
                      for event, endpoints in claimed for endpoint in endpoints]  # fmt: skip
        if len(deliveries) <= batch:
            _attempt_locked(deliveries, manual=False, created=True)
            return len(deliveries)
        Delivery.objects.bulk_create([delivery.as_model() for delivery in deliveries])
        delivery_ids = [delivery.pk for delivery in deliveries]
        transaction.on_commit(lambda: _enqueue_deliveries(delivery_ids[batch:]))
    deliveries_attempt(delivery_ids=delivery_ids[:batch])
    return len(delivery_ids)


# --- endpoints -----------------------------------------------------------------------------------


def _check_url(url: str) -> None:
    try:
        destination_check(url)
    except BlockedDestination as exc:
        raise _invalid("url", str(exc)) from exc


def _check_event_types(event_types: list[str]) -> None:
    if not event_types:
        raise _invalid("event_types", 'Subscribe to at least one event type (or "*").')
    unknown = catalogue.invalid_patterns(event_types)
    if unknown:
        raise _invalid("event_types", f"Unknown event types: {', '.join(unknown)}.")


def _check_signature_scheme(scheme: str) -> None:
    if scheme not in SignatureScheme.values:
        raise _invalid("signature_scheme", f"Choose one of: {', '.join(SignatureScheme.values)}.")


def _signing_key_new(scheme: str) -> tuple[str, str, str | None]:
    """A new signing key: (its encrypted form, its whpk_ public key or "", what to show once: the whsec_
    secret of v1, None for v1a, whose private key never leaves the platform)."""
    key = signing.key_generate(scheme)
    if scheme == SignatureScheme.V1A:
        return encryption.encrypt(key), signing.public_key(key), None
    return encryption.encrypt(key), "", key


@transaction.atomic
def endpoint_create(
    *, tenant, url: str, event_types: list[str], description: str = "", signature_scheme: str = SignatureScheme.V1
) -> tuple[Endpoint, str | None]:
    """Create an endpoint; returns it and its v1 signing secret, which is shown this once (None for v1a:
    the endpoint's public key verifies its signatures)."""
    _check_url(url)
    _check_event_types(event_types)
    _check_signature_scheme(signature_scheme)
    # Serialise creations per tenant so the limit holds under concurrency.
    Tenant.objects.select_for_update().filter(pk=tenant.pk).first()
    if Endpoint.objects.filter(tenant=tenant).count() >= settings.WEBHOOKS_MAX_ENDPOINTS_PER_TENANT:
        raise ApplicationError(
            "limit_reached",
            f"A tenant may have at most {settings.WEBHOOKS_MAX_ENDPOINTS_PER_TENANT} webhook endpoints.",
            status_code=409,
        )
    key_encrypted, public_key, secret = _signing_key_new(signature_scheme)
    endpoint = Endpoint.objects.create(
        tenant=tenant,
        url=url,
        event_types=list(dict.fromkeys(event_types)),
        description=description,
        secret_encrypted=key_encrypted,
        signature_scheme=signature_scheme,
        public_key=public_key,
    )
    logger.info("webhook endpoint created id=%s tenant=%s scheme=%s", endpoint.pk, tenant.pk, signature_scheme)
    return endpoint, secret


@transaction.atomic
def endpoint_update(
    *,
    endpoint: Endpoint,
    url: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
    is_active: bool | None = None,
) -> Endpoint:
    endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
    if url is not None:
        _check_url(url)
        endpoint.url = url
    if event_types is not None:
        _check_event_types(event_types)
        endpoint.event_types = list(dict.fromkeys(event_types))
    if description is not None:
        endpoint.description = description
    endpoint.save()
    if is_active is True and not endpoint.is_active:
        endpoint = endpoint_enable(endpoint=endpoint)
    elif is_active is False and endpoint.is_active:
        endpoint = endpoint_disable(endpoint=endpoint, reason="disabled by the tenant", notify=False)
    logger.info("webhook endpoint updated id=%s", endpoint.pk)
    return endpoint


@transaction.atomic
def endpoint_delete(*, endpoint: Endpoint) -> None:
    endpoint_id = endpoint.pk
    endpoint.delete()
    logger.info("webhook endpoint deleted id=%s", endpoint_id)


@transaction.atomic
def endpoint_rotate_secret(
    *, endpoint: Endpoint, grace_seconds: int | None = None, signature_scheme: str | None = None
) -> str | None:
    """A new signing key signs from now on (of the scheme given, or the endpoint's); the old one also signs
    until the grace period ends. Returns the new v1 secret (shown this once), None for a v1a key."""
    endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
    scheme = endpoint.signature_scheme if signature_scheme is None else signature_scheme
    _check_signature_scheme(scheme)
    grace = settings.WEBHOOKS_ROTATION_GRACE_SECONDS if grace_seconds is None else grace_seconds
    key_encrypted, public_key, secret = _signing_key_new(scheme)
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted if grace > 0 else ""
    endpoint.previous_public_key = endpoint.public_key if grace > 0 else ""
    endpoint.previous_secret_expires_at = timezone.now() + timedelta(seconds=grace) if grace > 0 else None
    endpoint.secret_encrypted, endpoint.public_key, endpoint.signature_scheme = key_encrypted, public_key, scheme
    endpoint.save()
    logger.info("webhook endpoint secret rotated id=%s grace=%ss scheme=%s", endpoint.pk, grace, scheme)
    return secret


def endpoint_signing_secrets(endpoint: Endpoint, *, now: datetime | None = None) -> list[str]:
    secrets_ = [encryption.decrypt(endpoint.secret_encrypted)]
    now = now or timezone.now()
    if (
        endpoint.previous_secret_encrypted
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > now
    ):
        secrets_.append(encryption.decrypt(endpoint.previous_secret_encrypted))
    return secrets_


@transaction.atomic
def endpoint_disable(*, endpoint: Endpoint, reason: str, notify: bool = True) -> Endpoint:
    """Disable an endpoint once; with notify, emit webhook.endpoint.disabled to the tenant's other endpoints."""
    now = timezone.now()
    changed = Endpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
        is_active=False, disabled_reason=reason[:200], disabled_at=now, updated_at=now
    )
    endpoint = Endpoint.objects.get(pk=endpoint.pk)
    if changed:
        logger.warning("webhook endpoint disabled id=%s reason=%s", endpoint.pk, reason)
        if notify:
            event_record(
                tenant=endpoint.tenant,
                type="webhook.endpoint.disabled",
                data={"endpoint": {"id": str(endpoint.pk), "url": endpoint.url, "reason": reason}},
            )
    return endpoint


@transaction.atomic
def endpoint_enable(*, endpoint: Endpoint) -> Endpoint:
    now = timezone.now()
    Endpoint.objects.filter(pk=endpoint.pk).update(
        is_active=True, disabled_reason="", disabled_at=None, failing_since=None, updated_at=now
    )
    return Endpoint.objects.get(pk=endpoint.pk)


def endpoint_ping(*, endpoint: Endpoint) -> Event:
    """Send a `ping` event to this endpoint only (even if it subscribes to nothing matching)."""
    return event_record(
        tenant=endpoint.tenant, type="ping", data={"message": "ping", "endpoint": str(endpoint.pk)},
        target_endpoint=endpoint,
    )  # fmt: skip


# --- deliveries ----------------------------------------------------------------------------------


def _next_delay(*, attempts_made: int, response: Response) -> float | None:
    """Seconds until the next attempt, or None when the schedule is exhausted."""
    schedule = settings.WEBHOOKS_RETRY_SCHEDULE
    if attempts_made >= len(schedule):
        return None
    jitter = settings.WEBHOOKS_RETRY_JITTER
    delay = schedule[attempts_made] * (1 + random.uniform(-jitter, jitter))  # noqa: S311 (jitter, not crypto)
    if response.status in (429, 503) and response.retry_after is not None:
        delay = max(delay, min(response.retry_after, settings.WEBHOOKS_RETRY_AFTER_MAX_SECONDS))
    return delay


def _destination(url: str):
    """The checked, pinned destination of a URL, or the SSRF guard's refusal (checked at delivery time)."""
    try:
        return destination_check(url)
    except BlockedDestination as exc:
        return exc


def _send_all(deliveries: list[Delivery | _NewDelivery]) -> list[tuple[Response, datetime]]:
    """Send a batch concurrently (webhooks/http.py); no database access happens here.

    Each event's body is encoded, and each endpoint's secrets decrypted and its URL resolved and checked
    (the connection is pinned to the checked address), once per batch."""
    now = timezone.now()
    timestamp = int(now.timestamp())
    bodies, secrets_, destinations = {}, {}, {}
    for delivery in deliveries:
        if delivery.event_id not in bodies:
            bodies[delivery.event_id] = event_body(delivery.event)
        if delivery.endpoint_id not in secrets_:
            secrets_[delivery.endpoint_id] = endpoint_signing_secrets(delivery.endpoint, now=now)
            destinations[delivery.endpoint_id] = _destination(delivery.endpoint.url)
    results: list = [None] * len(deliveries)
    requests, sending = [], []
    for index, delivery in enumerate(deliveries):
        destination = destinations[delivery.endpoint_id]
        if isinstance(destination, BlockedDestination):
            results[index] = Response(None, "", f"refused by the SSRF guard: {destination}"[:500], 0, None), now
            continue
        body = bodies[delivery.event_id]
        headers = signing.headers(
            secrets_=secrets_[delivery.endpoint_id], msg_id=delivery.msg_id, timestamp=timestamp, body=body
        )
        requests.append(Request(destination, body, headers))
        sending.append(index)
    for index, response in zip(sending, client().post_many(requests), strict=True):
        results[index] = response, datetime.fromtimestamp(response.started, tz=UTC)
    return results


def _enqueue_deliveries(delivery_ids: list, *, countdown: float | None = None, manual: bool = False) -> None:
    size = settings.WEBHOOKS_BATCH_SIZE
    for start in range(0, len(delivery_ids), size):
        batch = [str(pk) for pk in delivery_ids[start : start + size]]
        _enqueue("delivery_attempt_task", batch, manual, countdown=countdown)


def _succeeded(response: Response) -> bool:
    return response.status is not None and 200 <= response.status < 300


def deliveries_attempt(*, delivery_ids: list, manual: bool = False) -> dict[str, str]:
    """Make the next attempt of each due delivery of the batch; idempotent, safe to run twice at once.

    The delivery rows stay locked during the requests, so a duplicate task skips them; if the worker dies,
    the locks die with its connection and the sweeper queues the deliveries again. The requests of a
    batch go out concurrently; its attempts and outcomes are written in a few statements.
    """
    with transaction.atomic():
        deliveries = list(
            Delivery.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("endpoint", "event")
            .filter(pk__in=delivery_ids, status=Delivery.Status.PENDING)
        )
        now = timezone.now()
        due = [d for d in deliveries if not d.next_attempt_at or d.next_attempt_at <= now + timedelta(milliseconds=500)]
        _attempt_locked(due, manual=manual, created=False)
    return {str(d.pk): d.status for d in due}


def _attempt_locked(due: list[Delivery | _NewDelivery], *, manual: bool, created: bool) -> None:
    """Attempt deliveries this transaction holds (locked rows, or, with created, rows it inserts after the
    requests) and write the outcome in one statement (_outcome_write)."""
    if not due:
        return
    now = timezone.now()
    for delivery in due:
        if not delivery.endpoint.is_active:
            delivery.status, delivery.finished_at = Delivery.Status.FAILED, now
    sending = [d for d in due if d.status == Delivery.Status.PENDING]
    sent_at = timezone.now()
    results = _send_all(sending)
    now = timezone.now()

    # Endpoint bookkeeping first: an endpoint that is gone or failing too long takes no more retries.
    succeeded_endpoints = {d.endpoint_id for d, (r, _) in zip(sending, results, strict=True) if _succeeded(r)}
    failed_endpoints = {d.endpoint_id: started for d, (r, started) in zip(sending, results, strict=True)
                        if not _succeeded(r)}  # fmt: skip
    gone_endpoints = {d.endpoint_id for d, (r, _) in zip(sending, results, strict=True) if r.status == 410}
    disabled: set = set()
    for endpoint_id, started_at in failed_endpoints.items():
        if endpoint_id in succeeded_endpoints:
            continue
        Endpoint.objects.filter(pk=endpoint_id, failing_since__isnull=True).update(failing_since=started_at)
    disable_before = now - timedelta(seconds=settings.WEBHOOKS_DISABLE_AFTER_SECONDS)
    still_failing = set(failed_endpoints) - succeeded_endpoints - gone_endpoints
    too_long = set(
        Endpoint.objects.filter(pk__in=still_failing, failing_since__lte=disable_before).values_list("pk", flat=True)
        if still_failing  # the usual batch: everything answered, and no query is built at all
        else ()
    )
    by_id = {d.endpoint_id: d.endpoint for d in sending}
    for endpoint_id in gone_endpoints:
        endpoint_disable(endpoint=by_id[endpoint_id], reason="the endpoint answered 410 Gone")
        disabled.add(endpoint_id)
    for endpoint_id in too_long:
        endpoint_disable(endpoint=by_id[endpoint_id], reason="failing for too long")
        disabled.add(endpoint_id)

    attempts = []
    follow_ups: list[tuple[float, object]] = []
    for delivery, (response, started_at) in zip(sending, results, strict=True):
        succeeded = _succeeded(response)
        delivery.attempt_count += 1
        delivery.last_attempt_at = sent_at
        attempts.append(
            {  # a row, not a model instance: it only feeds _outcome_write
                "delivery_id": delivery.pk,
                "number": delivery.attempt_count,
                "started_at": started_at,
                "duration_ms": response.duration_ms,
                "status_code": response.status,
                "succeeded": succeeded,
                "error": _text(response.error)
                or ("" if succeeded or response.status is None else f"HTTP {response.status}"),
                "response_excerpt": _text(response.excerpt),
                "manual": manual,
            }
        )
        delay = None
        if succeeded:
            delivery.status = Delivery.Status.SUCCEEDED
        elif delivery.endpoint_id not in disabled:
            delay = _next_delay(attempts_made=delivery.attempt_count, response=response)
            if delay is None:
                delivery.status = Delivery.Status.FAILED
        else:
            delivery.status = Delivery.Status.FAILED
        metrics.record_webhook_delivery(
            outcome="delivered" if succeeded else ("retrying" if delay is not None else "failed"),
            seconds=response.duration_ms / 1000,
        )
        if delay is None:
            delivery.finished_at, delivery.next_attempt_at = now, None
        else:
            delivery.next_attempt_at = now + timedelta(seconds=delay)
            if delay <= settings.WEBHOOKS_COUNTDOWN_MAX_SECONDS:
                follow_ups.append((delay, delivery.pk))
                delivery.queued_until = delivery.next_attempt_at + timedelta(
                    seconds=settings.WEBHOOKS_REQUEUE_AFTER_SECONDS
                )
            else:
                delivery.queued_until = None  # the sweeper queues it when due
        logger.info(
            "webhook attempt delivery=%s endpoint=%s status=%s error=%s duration_ms=%s",
            delivery.pk, delivery.endpoint_id, response.status, response.error or "-", response.duration_ms,
        )  # fmt: skip
    _outcome_write(due, attempts, created=created, recovered_endpoints=succeeded_endpoints)
    if follow_ups:
        transaction.on_commit(lambda: [_enqueue_deliveries([pk], countdown=delay) for delay, pk in follow_ups])


# The outcome of a batch in one statement: the ORM's per-row, per-field work (bulk_create, an UPDATE per
# outcome) cost more CPU than the batch's requests. The rows travel as one JSON parameter (encoded in C;
# psycopg's client-side quoting of typed arrays cost as much again) that jsonb_to_recordset unpacks.
_DELIVERY_COLUMNS = ["id", "event", "endpoint", "status", "attempt_count", "next_attempt_at", "queued_until",
                     "last_attempt_at", "created_at", "finished_at"]  # fmt: skip
_ATTEMPT_COLUMNS = ["delivery", "number", "started_at", "duration_ms", "status_code", "succeeded", "error",
                    "response_excerpt", "manual"]  # fmt: skip


def _text(value: str) -> str:
    # PostgreSQL text (and jsonb) cannot hold NUL; a receiver's body may. Refusing it would fail the batch.
    return value.replace("\x00", "\ufffd")


def _json_default(value):
    """What json cannot encode by itself (called from its C encoder for these values only)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


@functools.cache
def _recordset(model, names: tuple[str, ...]) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...], str]:
    """(column, attribute) pairs, quoted columns and the `jsonb_to_recordset(...)` source of a model's columns."""
    fields = [model._meta.get_field(name) for name in names]
    columns = [connection.ops.quote_name(field.column) for field in fields]
    definition = ", ".join(
        f"{column} {field.db_type(connection)}" for column, field in zip(columns, fields, strict=True)
    )
    pairs = tuple((field.column, field.attname) for field in fields)
    return pairs, tuple(columns), f"jsonb_to_recordset(%s::jsonb) AS v({definition})"  # cached: immutable


def _records(model, names: list[str], objects: list) -> tuple[tuple[str, ...], str, str]:
    """The quoted columns, `jsonb_to_recordset(%s::jsonb) AS v(column type, ...)` and its JSON parameter;
    objects are instances of the model or dicts keyed by attribute name."""
    pairs, columns, source = _recordset(model, tuple(names))
    if objects and isinstance(objects[0], dict):
        rows = [{column: obj[attname] for column, attname in pairs} for obj in objects]
    else:
        rows = [{column: getattr(obj, attname) for column, attname in pairs} for obj in objects]
    return columns, source, json.dumps(rows, default=_json_default)


def _outcome_write(
    deliveries: list[Delivery | _NewDelivery], attempts: list[dict], *, created: bool, recovered_endpoints: set
) -> None:
    """Insert (created) or update the deliveries, insert their attempts and clear `failing_since` of the
    endpoints that answered, in one statement (data-modifying WITH queries). Every identifier in the SQL
    comes from the models' metadata and every value is a parameter (hence the S608 waivers).
    Other databases than PostgreSQL (SQLite, embedded mode) take the ORM's way, a few statements."""
    if connection.vendor != "postgresql":
        return _outcome_write_portable(deliveries, attempts, created=created, recovered_endpoints=recovered_endpoints)
    quote = connection.ops.quote_name
    columns, source, rows = _records(Delivery, _DELIVERY_COLUMNS, deliveries)
    params = [rows]
    table = quote(Delivery._meta.db_table)
    if created:
        ctes = [f"deliveries AS (INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM {source})"]  # noqa: S608
    else:
        assignments = ", ".join(f"{column} = v.{column}" for column in columns[3:] if column != quote("created_at"))
        ctes = [f"deliveries AS (UPDATE {table} AS t SET {assignments} FROM {source} WHERE t.id = v.id)"]  # noqa: S608
    if recovered_endpoints:
        ctes.append(
            f"endpoints AS (UPDATE {quote(Endpoint._meta.db_table)} SET failing_since = NULL"  # noqa: S608
            " WHERE id = ANY(%s::uuid[]) AND failing_since IS NOT NULL)"
        )
        params.append("{" + ",".join(str(pk) for pk in recovered_endpoints) + "}")  # one quoted literal
    columns, source, rows = _records(Attempt, _ATTEMPT_COLUMNS, attempts)
    insert = f"INSERT INTO {quote(Attempt._meta.db_table)} ({', '.join(columns)}) SELECT * FROM {source}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {', '.join(ctes)} {insert}", [*params, rows])


def _outcome_write_portable(
    deliveries: list[Delivery | _NewDelivery], attempts: list[dict], *, created: bool, recovered_endpoints: set
) -> None:
    if created:  # new deliveries (_NewDelivery) after their first attempt
        Delivery.objects.bulk_create([delivery.as_model() for delivery in deliveries])
    else:  # locked Delivery rows
        names = [Delivery._meta.get_field(name).attname for name in _DELIVERY_COLUMNS]
        Delivery.objects.bulk_update(deliveries, [name for name in names[3:] if name != "created_at"])
    Attempt.objects.bulk_create([Attempt(**attempt) for attempt in attempts])
    Endpoint.objects.filter(pk__in=recovered_endpoints, failing_since__isnull=False).update(failing_since=None)


def delivery_attempt(*, delivery_id, manual: bool = False) -> str:
    """One delivery's next attempt (see deliveries_attempt); returns its status, or why nothing was sent."""
    return deliveries_attempt(delivery_ids=[delivery_id], manual=manual).get(str(delivery_id), "skipped")


@transaction.atomic
def delivery_redeliver(*, delivery: Delivery) -> Delivery:
    """Queue one more attempt of a delivery now (same webhook-id), whatever its state."""
    delivery = Delivery.objects.select_for_update(of=("self",)).get(pk=delivery.pk)
    if not Endpoint.objects.filter(pk=delivery.endpoint_id, is_active=True).exists():
        raise ApplicationError("invalid_state", "The endpoint is disabled; enable it first.", status_code=409)
    now = timezone.now()
    delivery.status = Delivery.Status.PENDING
    delivery.next_attempt_at = now
    delivery.finished_at = None
    delivery.queued_until = now + timedelta(seconds=settings.WEBHOOKS_REQUEUE_AFTER_SECONDS)
    delivery.save(update_fields=["status", "next_attempt_at", "finished_at", "queued_until"])
    delivery_pk = delivery.pk
    transaction.on_commit(lambda: _enqueue_deliveries([delivery_pk], manual=True))
    return delivery


@transaction.atomic
def deliveries_replay_failed(*, endpoint: Endpoint, since: datetime) -> int:
    """Redeliver every failed delivery of the endpoint created since the given time."""
    if not Endpoint.objects.filter(pk=endpoint.pk, is_active=True).exists():
        raise ApplicationError("invalid_state", "The endpoint is disabled; enable it first.", status_code=409)
    now = timezone.now()
    ids = list(
        Delivery.objects.filter(endpoint=endpoint, status=Delivery.Status.FAILED, created_at__gte=since).values_list(
            "pk", flat=True
        )[:10_000]
    )
    Delivery.objects.filter(pk__in=ids).update(
        status=Delivery.Status.PENDING,
        next_attempt_at=now,
        finished_at=None,
        queued_until=now + timedelta(seconds=settings.WEBHOOKS_REQUEUE_AFTER_SECONDS),
    )
    transaction.on_commit(lambda: _enqueue_deliveries(ids, manual=True))
    logger.info("webhook replay endpoint=%s since=%s count=%s", endpoint.pk, since.isoformat(), len(ids))
    return len(ids)


def webhooks_sweep(*, limit: int = 1000) -> dict:
    """Queue what a lost task left behind: events not fanned out, due deliveries nobody has queued."""
    now = timezone.now()
    requeue_after = timedelta(seconds=settings.WEBHOOKS_REQUEUE_AFTER_SECONDS)
    event_ids = list(
        Event.objects.filter(fanned_out_at__isnull=True, created_at__lte=now - requeue_after)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    for event_id in event_ids:
        _enqueue("event_fan_out_task", str(event_id))
    with transaction.atomic():
        delivery_ids = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
            .filter(Q(queued_until__isnull=True) | Q(queued_until__lt=now))
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:limit]
        )
        Delivery.objects.filter(pk__in=delivery_ids).update(queued_until=now + requeue_after)
        transaction.on_commit(lambda: _enqueue_deliveries(delivery_ids))
    if event_ids or delivery_ids:
        logger.info("webhooks sweep queued events=%s deliveries=%s", len(event_ids), len(delivery_ids))
    return {"events": len(event_ids), "deliveries": len(delivery_ids)}
