"""Retry policy, lanes and the circuit breaker: what an attempt's outcome means for its delivery and endpoint.

Lanes: an endpoint whose last attempt failed, or answered slower than WEBHOOKS_SLOW_LANE_SECONDS, is in
the slow lane: its deliveries are sent by the slow lane's loop (webhooks/delivery.py), never inline by the
fan-out, so healthy endpoints' first attempts do not wait behind it. A success in time puts it back.

Circuit breaker: WEBHOOKS_BREAKER_THRESHOLD failed attempts in a row open it; its deliveries then wait
without a request until one probe goes out after WEBHOOKS_BREAKER_COOLDOWN_SECONDS (half-open); the probe's
success closes it, its failure opens it for another cool-down. Disabling after WEBHOOKS_DISABLE_AFTER_SECONDS
of failures (and at once on 410 Gone) applies on top.
"""

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import DateTimeField, F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from observability import metrics

from .http import Response
from .models import Endpoint

Lane, BreakerState = Endpoint.Lane, Endpoint.BreakerState


def succeeded(response: Response) -> bool:
    return response.status is not None and 200 <= response.status < 300


def next_delay(*, attempts_made: int, response: Response) -> float | None:
    """Seconds until the next attempt (counted from the end of this one), or None when the schedule is over."""
    schedule = settings.WEBHOOKS_RETRY_SCHEDULE
    if attempts_made >= len(schedule):
        return None
    jitter = settings.WEBHOOKS_RETRY_JITTER
    delay = schedule[attempts_made] * (1 + random.uniform(-jitter, jitter))  # noqa: S311 (jitter, not crypto)
    if response.status in (429, 503) and response.retry_after is not None:
        delay = max(delay, min(response.retry_after, settings.WEBHOOKS_RETRY_AFTER_MAX_SECONDS))
    return delay


@dataclass
class Verdicts:
    """What the outcomes did to their endpoints."""

    disabled: set = field(default_factory=set)
    closed: set = field(default_factory=set)
    opened: dict = field(default_factory=dict)  # endpoint id -> time of its probe


def _clean(endpoint) -> bool:
    return (
        not endpoint.consecutive_failures
        and endpoint.lane == Lane.FAST
        and endpoint.breaker_state == BreakerState.CLOSED
        and endpoint.failing_since is None
    )


def endpoints_record(outcomes: list[tuple[object, Response, datetime]], *, now: datetime) -> Verdicts:
    """Update the endpoints of a set of finished attempts ((endpoint as loaded, response, started at)): failures
    in a row, lane, breaker, failing_since; disable on 410 or after failing too long. Call it in the
    transaction that writes the outcomes. The usual case (clean endpoints that answered) costs no query."""
    from .endpoints import endpoint_disable

    verdicts = Verdicts()
    by_endpoint: dict = {}
    for endpoint, response, started_at in outcomes:
        by_endpoint.setdefault(endpoint.pk, (endpoint, []))[1].append((response, started_at))
    slow_ms = settings.WEBHOOKS_SLOW_LANE_SECONDS * 1000
    # In id order (as an UPDATE by primary key locks them): two loops' outcomes for the same endpoints
    # would otherwise lock them in opposite orders and deadlock.
    for endpoint_id, (endpoint, results) in sorted(by_endpoint.items(), key=lambda item: str(item[0])):
        answered = [response for response, _ in results if succeeded(response)]
        if answered:
            lane = Lane.SLOW if min(r.duration_ms for r in answered) >= slow_ms else Lane.FAST
            if _clean(endpoint) and lane == Lane.FAST:
                continue  # the usual case: no query, and no queryset built either
        rows = Endpoint.objects.filter(pk=endpoint_id)
        if answered:
            if rows.exclude(breaker_state=BreakerState.CLOSED).update(
                breaker_state=BreakerState.CLOSED, breaker_opened_at=None, breaker_probe_at=None
            ):
                metrics.record_webhook_breaker(transition="closed")
                verdicts.closed.add(endpoint_id)
            rows.update(consecutive_failures=0, failing_since=None, lane=lane)
            continue
        rows.update(
            consecutive_failures=F("consecutive_failures") + len(results),
            lane=Lane.SLOW,
            failing_since=Coalesce("failing_since", Value(min(started for _, started in results), DateTimeField())),
        )
        state = rows.values("consecutive_failures", "breaker_state", "failing_since", "is_active").first()
        if state is None or not state["is_active"]:
            verdicts.disabled.add(endpoint_id)
            continue
        if any(response.status == 410 for response, _ in results):
            endpoint_disable(endpoint=Endpoint.objects.get(pk=endpoint_id), reason="the endpoint answered 410 Gone")
            verdicts.disabled.add(endpoint_id)
            continue
        if state["failing_since"] <= now - timedelta(seconds=settings.WEBHOOKS_DISABLE_AFTER_SECONDS):
            endpoint_disable(endpoint=Endpoint.objects.get(pk=endpoint_id), reason="failing for too long")
            verdicts.disabled.add(endpoint_id)
            continue
        was = state["breaker_state"]
        if was != BreakerState.CLOSED or state["consecutive_failures"] >= settings.WEBHOOKS_BREAKER_THRESHOLD:
            probe_at = now + timedelta(seconds=settings.WEBHOOKS_BREAKER_COOLDOWN_SECONDS)
            fields = {"breaker_state": BreakerState.OPEN, "breaker_probe_at": probe_at}
            if was == BreakerState.CLOSED:
                fields["breaker_opened_at"] = now
            rows.update(**fields)
            if was != BreakerState.OPEN:
                metrics.record_webhook_breaker(transition="opened" if was == BreakerState.CLOSED else "reopened")
            verdicts.opened[endpoint_id] = probe_at
    return verdicts


def probe_due(endpoint, *, now: datetime | None = None) -> bool:
    """Whether the endpoint's breaker is open (or its probe was lost) and its next probe may go now."""
    now = now or timezone.now()
    return endpoint.breaker_state != BreakerState.CLOSED and (
        endpoint.breaker_probe_at is None or endpoint.breaker_probe_at <= now
    )
