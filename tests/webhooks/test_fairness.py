"""Fairness, per-delivery retry times and the circuit breaker, end to end on real workers and receivers.

No timings are asserted where order says it: a healthy tenant's request went out before any hanging
request ended; a retry went out before its batch-mate's request ended. Bounds only where they are the
point (the breaker's cool-down)."""

from datetime import timedelta

import pytest

from observability import metrics
from tenants import services as tenant_services
from tests.helpers import wait_for
from webhooks import policy, services
from webhooks.http import Response
from webhooks.models import Attempt, Delivery, Endpoint, Event

pytestmark = [pytest.mark.django_db(transaction=True)]


def _endpoint(tenant, url, event_types=("tenant.*",)):
    return services.endpoint_create(tenant=tenant, url=url, event_types=list(event_types))[0]


def _finished_first_attempts(endpoints) -> list[Attempt]:
    return list(Attempt.objects.filter(delivery__endpoint__in=endpoints, number=1, state="finished"))


def _ended(attempt: Attempt):
    return attempt.started_at + timedelta(milliseconds=attempt.duration_ms)


def _slow_and_other_tenant(receiver, other_receiver, *, hanging: int):
    """A tenant whose `hanging` endpoints never answer, and another tenant with one healthy endpoint."""
    slow = tenant_services.tenant_create(name="Slow Co", slug="slow-co")
    other = tenant_services.tenant_create(name="Other Co", slug="other-co")
    for index in range(hanging):
        receiver.script[f"/hang/{index}"] = [("hang", 60)]
    endpoints = [_endpoint(slow, receiver.url(f"/hang/{index}")) for index in range(hanging)]
    return slow, other, endpoints, _endpoint(other, other_receiver.url())


def test_another_tenants_delivery_goes_out_while_one_tenant_has_8_hanging_endpoints(
    readme_worker, receiver, other_receiver
):
    """The README's worker (2 processes). One tenant's 8 receivers never answer (the client gives up after
    15 s) and it keeps emitting events; another tenant's first attempt is over before any hanging request is."""
    slow, other, hanging, healthy = _slow_and_other_tenant(receiver, other_receiver, hanging=8)

    tenant_services.tenant_suspend(tenant=slow, reason="first")
    wait_for(lambda: len(receiver.received()) >= 8, timeout=20)  # the first event's 8 requests hang
    tenant_services.tenant_reactivate(tenant=slow)  # and its next events wait for them, or for the slow lane
    tenant_services.tenant_suspend(tenant=slow, reason="more")
    assert not _finished_first_attempts(hanging), [(a.error, a.duration_ms) for a in _finished_first_attempts(hanging)]

    tenant_services.tenant_suspend(tenant=other, reason="the healthy tenant's event")
    delivery = wait_for(lambda: Delivery.objects.filter(endpoint=healthy, status="succeeded").first(), timeout=20)
    (healthy_attempt,) = delivery.attempts.all()
    assert [request.path for request in other_receiver.received()] == ["/hook"] and healthy_attempt.succeeded

    ended = wait_for(lambda: len(_finished_first_attempts(hanging)) >= 8 and _finished_first_attempts(hanging), 40)
    assert all(attempt.error.startswith("Timeout") for attempt in ended)
    assert _ended(healthy_attempt) < min(_ended(attempt) for attempt in ended)
    # The hanging endpoints were moved to the slow lane.
    assert set(Endpoint.objects.filter(pk__in=[e.pk for e in hanging]).values_list("lane", flat=True)) == {"slow"}


def test_another_tenants_delivery_goes_out_while_one_tenant_has_50_new_hanging_endpoints(
    readme_worker, receiver, other_receiver, settings
):
    """The README's worker (2 processes). One tenant has 50 new endpoints (fast lane) that never answer and
    keeps emitting events: two waves of 5, each 250 deliveries, more than a loop sends to one hanging host
    in minutes. Each slot's loop must keep claiming (that tenant's further deliveries overflow to the slow
    lane), so another tenant's first attempt is over before any hanging request is."""
    settings.WEBHOOKS_MAX_ENDPOINTS_PER_TENANT = 50
    slow, other, hanging, healthy = _slow_and_other_tenant(receiver, other_receiver, hanging=50)

    for wave in range(2):  # each wave fanned out before the next: the second one finds the first's loop busy
        for _ in range(5):
            tenant_services.tenant_suspend(tenant=slow, reason=f"wave {wave}")
            tenant_services.tenant_reactivate(tenant=slow)
        wait_for(lambda: not Event.objects.filter(tenant=slow, fanned_out_at__isnull=True).exists(), timeout=20)
    assert not _finished_first_attempts(hanging)

    tenant_services.tenant_suspend(tenant=other, reason="the healthy tenant's event")
    delivery = wait_for(lambda: Delivery.objects.filter(endpoint=healthy, status="succeeded").first(), timeout=40)
    (healthy_attempt,) = delivery.attempts.all()
    assert healthy_attempt.succeeded

    ended = wait_for(lambda: _finished_first_attempts(hanging), timeout=40)
    assert all(attempt.error.startswith("Timeout") for attempt in ended)
    assert _ended(healthy_attempt) < min(_ended(attempt) for attempt in ended)


@pytest.mark.usefixtures("webhooks_worker")
def test_a_retry_and_a_410_do_not_wait_for_a_hanging_batch_mate(receiver, settings):
    """One event to three endpoints, sent as one batch: the 500's retry (counted from the end of its own
    attempt) and the 410's disabling happen while the third request still hangs."""
    tenant = tenant_services.tenant_create(name="Batch Co", slug="batch-co")
    receiver.script["/fail"] = [("status", 500), ("ok",)]
    receiver.script["/hang"] = [("hang",)]
    receiver.script["/gone"] = [("status", 410)]
    fail, hang, gone = (_endpoint(tenant, receiver.url(path)) for path in ("/fail", "/hang", "/gone"))
    tenant_services.tenant_suspend(tenant=tenant, reason="x")

    delivery = wait_for(lambda: Delivery.objects.filter(endpoint=fail, status="succeeded").first(), timeout=20)
    (hung,) = wait_for(lambda: _finished_first_attempts([hang]), timeout=20)
    first, retry = delivery.attempts.all()
    assert first.status_code == 500 and retry.succeeded
    # Counted from the end of its own attempt: at least the scheduled delay minus jitter after it ...
    assert retry.started_at - _ended(first) >= timedelta(seconds=settings.WEBHOOKS_RETRY_SCHEDULE[1] * 0.9)
    # ... and not from the end of the batch: before the hanging request ended.
    assert retry.started_at < _ended(hung) and hung.error.startswith("Timeout")
    gone.refresh_from_db()
    assert not gone.is_active and gone.disabled_at < _ended(hung)


@pytest.mark.usefixtures("webhooks_worker")
def test_breaker_opens_after_failures_in_a_row_waits_then_one_probe_closes_it(receiver, settings):
    tenant = tenant_services.tenant_create(name="Breaker Co", slug="breaker-co")
    threshold, cooldown = settings.WEBHOOKS_BREAKER_THRESHOLD, settings.WEBHOOKS_BREAKER_COOLDOWN_SECONDS
    receiver.script["/down"] = [("status", 503)] * threshold + [("ok",)]
    endpoint = _endpoint(tenant, receiver.url("/down"))
    tenant_services.tenant_suspend(tenant=tenant, reason="one")
    tenant_services.tenant_reactivate(tenant=tenant)  # two deliveries: more attempts than the threshold

    opened = wait_for(lambda: Endpoint.objects.filter(pk=endpoint.pk, breaker_state="open").first(), timeout=20)
    assert opened.consecutive_failures >= threshold and opened.breaker_probe_at > opened.breaker_opened_at
    wait_for(lambda: Endpoint.objects.filter(pk=endpoint.pk, breaker_state="closed").exists(), timeout=20)
    wait_for(lambda: not Delivery.objects.filter(endpoint=endpoint, status="pending").exists(), timeout=20)

    requests = receiver.received("/down")
    failures, probe = requests[:threshold], requests[threshold]
    # Nothing was sent while the breaker was open: the next request came after the cool-down.
    assert probe.at - failures[-1].at >= cooldown * 0.9
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0 and endpoint.lane == "fast" and endpoint.breaker_opened_at is None
    assert Delivery.objects.filter(endpoint=endpoint, status="succeeded").exists()
    # Every request that went out is an attempt on record.
    assert Attempt.objects.filter(delivery__endpoint=endpoint, state="finished").count() == len(requests)


def test_breaker_transitions_are_counted_in_the_metric(tenant, settings):
    """The recording function behind webhook_breaker_transitions_total, through the policy (in-process)."""
    settings.WEBHOOKS_BREAKER_THRESHOLD = 2
    endpoint = _endpoint(tenant, "https://93.184.216.34/hook")
    counter = metrics.WEBHOOK_BREAKER.labels(transition="opened")
    closed = metrics.WEBHOOK_BREAKER.labels(transition="closed")
    before, closed_before = counter._value.get(), closed._value.get()
    now = endpoint.created_at + timedelta(seconds=1)
    failure = Response(503, "", "", 5, None)
    policy.endpoints_record([(endpoint, failure, now)], now=now)
    endpoint.refresh_from_db()
    assert endpoint.breaker_state == "closed" and endpoint.lane == "slow"
    policy.endpoints_record([(endpoint, failure, now)], now=now)
    endpoint.refresh_from_db()
    assert endpoint.breaker_state == "open" and counter._value.get() == before + 1
    policy.endpoints_record([(endpoint, Response(200, "", "", 5, None), now)], now=now)
    endpoint.refresh_from_db()
    assert endpoint.breaker_state == "closed" and closed._value.get() == closed_before + 1
