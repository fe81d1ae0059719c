"""The outbox: recording events in the caller's transaction, and claiming them for the fan-out.

`event_record` is the one entry point for other apps: call it inside the transaction of the change
that caused the event; the fan-out is queued only once that transaction commits.
"""

import json
import logging
import uuid
from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from core.exceptions import ApplicationError

from . import catalogue
from .models import Endpoint, Event
from .queueing import enqueue

logger = logging.getLogger(__name__)


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


def _tasks():
    from . import tasks  # tasks import the services: imported when first queued

    return tasks


def fan_out_queued_key() -> str:
    return f"webhooks:fan-out-queued:{settings.WEBHOOKS_QUEUE}"


def _fan_out_wake() -> None:
    """Queue the fan-out task, unless one is queued and has not started: that one will find this event.

    The task clears the mark before it claims events, so an event committed after the mark was cleared
    queues another task. Without the cache (or the broker) an event is queued on its own, or swept."""
    try:
        queued = not cache.add(fan_out_queued_key(), 1, timeout=settings.WEBHOOKS_REQUEUE_AFTER_SECONDS)
    except Exception as exc:
        logger.warning("webhooks: the cache is unavailable (%s); queueing a fan-out for this event", type(exc).__name__)
        queued = False
    if not queued and not enqueue(_tasks().events_fan_out_task):
        cache_delete(fan_out_queued_key())  # the next event tries again


def cache_delete(key: str) -> None:
    try:
        cache.delete(key)
    except Exception as exc:  # the mark expires by itself
        logger.warning("webhooks: could not clear %s (%s)", key, type(exc).__name__)


def cache_add(key: str, timeout: float) -> bool:
    """Set the mark unless it is set; True without a cache (the mark only saves work)."""
    try:
        return cache.add(key, 1, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - the mark is an optimisation
        logger.warning("webhooks: could not set %s (%s)", key, type(exc).__name__)
        return True


def cache_touch(key: str, timeout: float) -> None:
    try:
        cache.touch(key, timeout)
    except Exception as exc:  # noqa: BLE001 - the mark is an optimisation; it expires by itself
        logger.warning("webhooks: could not renew %s (%s)", key, type(exc).__name__)


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


class EndpointRow(NamedTuple):
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
    lane: str
    breaker_state: str
    consecutive_failures: int
    failing_since: datetime | None

    @property
    def pk(self) -> uuid.UUID:
        return self.id


def events_claim(*, event_id=None, limit: int = 1) -> list[tuple[Event, list[EndpointRow]]]:
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
        return events_claim_portable(event_id=event_id, limit=limit)
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
            f"SELECT {', '.join(quote(name) for name in EndpointRow._fields)} FROM {endpoints_table}"  # noqa: S608
            " WHERE (tenant_id = ANY(%s::uuid[]) AND is_active) OR id = ANY(%s::uuid[])",
            [[event.tenant_id for event in events if not event.target_endpoint_id],
             [event.target_endpoint_id for event in events if event.target_endpoint_id]],
        )  # fmt: skip
        endpoints = [EndpointRow._make(row) for row in cursor.fetchall()]
    endpoints = [endpoint._replace(event_types=json.loads(endpoint.event_types)) for endpoint in endpoints]
    return _subscribed(sorted(events, key=lambda event: event.created_at), endpoints)


def events_claim_portable(*, event_id, limit: int) -> list[tuple[Event, list[EndpointRow]]]:
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
    return _subscribed(events, [EndpointRow._make(row) for row in endpoints.values_list(*EndpointRow._fields)])


def _subscribed(events: list[Event], endpoints: list[EndpointRow]) -> list[tuple[Event, list[EndpointRow]]]:
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
