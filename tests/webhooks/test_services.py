"""Catalogue, outbox and sweeper, limits, and the tenant services' events (in-process)."""

import json

import pytest
from django.core.cache import cache
from django.db import transaction

from core.exceptions import ApplicationError
from tenants import services as tenant_services
from webhooks import catalogue, outbox, services
from webhooks import delivery as delivery_module
from webhooks.models import Delivery, Event

pytestmark = pytest.mark.django_db


def _capture_enqueue(monkeypatch, queued: list) -> None:
    """Record the names of the fan-out tasks queued (by reference) instead of queueing them."""

    def capture(task, *args, **kwargs):
        if task.name.endswith("events_fan_out_task"):
            queued.append("events_fan_out_task")
        return True

    monkeypatch.setattr(outbox, "enqueue", capture)
    monkeypatch.setattr(delivery_module, "enqueue", capture)


def test_catalogue_documents_every_event_of_the_issue():
    expected = {
        "tenant.suspended", "tenant.reactivated", "website.created", "website.updated", "website.deleted",
        "deployment.started", "deployment.succeeded", "deployment.failed", "apikey.created", "apikey.revoked",
        "cdn.invalidation.completed", "cdn.invalidation.failed", "backup.tenant_export.completed",
        "backup.tenant_export.failed", "webhook.endpoint.disabled", "ping",
        "hostname.verified", "hostname.verification_failed", "hostname.record_missing", "hostname.unverified",
        "usage.quota.warning", "usage.quota.exceeded",
    }  # fmt: skip
    assert set(catalogue.EVENT_TYPES) == expected
    assert all(e.version >= 1 and e.example and e.description for e in catalogue.EVENT_TYPES.values())


@pytest.mark.parametrize(
    ("pattern", "event_type", "matches"),
    [
        ("deployment.*", "deployment.failed", True),
        ("deployment.*", "website.created", False),
        ("cdn.*", "cdn.invalidation.completed", True),
        ("cdn.invalidation.*", "cdn.invalidation.failed", True),
        ("*", "tenant.suspended", True),
        ("*", "ping", False),
        ("website.created", "website.created", True),
        ("website.created", "website.updated", False),
        ("deploy*", "deployment.failed", False),
    ],
)
def test_subscription_patterns(pattern, event_type, matches):
    assert catalogue.pattern_matches(pattern, event_type) is matches


def test_unknown_event_type_is_a_programming_error(tenant):
    with pytest.raises(ValueError, match="catalogue"):
        services.event_record(tenant=tenant, type="website.exploded", data={})


def test_oversized_payload_is_refused_and_nothing_recorded(tenant, settings):
    settings.WEBHOOKS_MAX_PAYLOAD_BYTES = 1000
    with pytest.raises(ApplicationError) as error:
        services.event_record(tenant=tenant, type="website.created", data={"website": {"name": "x" * 2000}})
    assert error.value.code == "payload_too_large" and error.value.status_code == 413
    assert not Event.objects.filter(type="website.created", data__website__name__startswith="xxx").exists()


def test_tenant_services_record_events_in_their_transaction(tenant):
    website = tenant_services.website_create(tenant=tenant, name="Docs", hostnames=["docs.a.test"])
    tenant_services.website_update(website=website, name="Docs 2")
    deployment = tenant_services.deployment_create(website=website, run=False)
    tenant_services.deployment_start(deployment=deployment)
    tenant_services.deployment_fail(deployment=deployment, error="build broke")
    tenant_services.website_delete(website=website)
    tenant_services.tenant_suspend(tenant=tenant, reason="unpaid")
    tenant_services.tenant_reactivate(tenant=tenant)
    types = list(Event.objects.filter(tenant=tenant).order_by("created_at").values_list("type", flat=True))
    assert types == [
        "website.created", "website.updated", "deployment.started", "deployment.failed", "website.deleted",
        "tenant.suspended", "tenant.reactivated",
    ]  # fmt: skip
    failed = Event.objects.get(type="deployment.failed").data["deployment"]
    assert failed["status"] == "failed" and failed["error"] == "build broke" and failed["number"] == 1
    assert Event.objects.get(type="website.updated").data["website"]["name"] == "Docs 2"
    assert Event.objects.get(type="tenant.suspended").data["tenant"]["reason"] == "unpaid"


def test_failed_service_records_no_event(tenant):
    website = tenant_services.website_create(tenant=tenant, name="A")
    with pytest.raises(ApplicationError):
        tenant_services.website_create(tenant=tenant, name="A")  # name taken
    assert Event.objects.filter(type="website.created").count() == 1 and website


def test_sweeper_fans_out_events_whose_task_was_lost(tenant, settings, django_capture_on_commit_callbacks, monkeypatch):
    """Here on_commit never runs (the test's transaction never commits): exactly a lost fan-out task."""
    settings.WEBHOOKS_REQUEUE_AFTER_SECONDS = 0
    endpoint, _ = services.endpoint_create(tenant=tenant, url="https://93.184.216.34/", event_types=["tenant.*"])
    event = services.event_record(tenant=tenant, type="tenant.suspended", data={"tenant": {}})
    with django_capture_on_commit_callbacks():
        swept = services.webhooks_sweep()
    assert swept["events"] >= 1 and event.fanned_out_at is None
    # The sweep queued the fan-out; run it as the worker would, twice: it is idempotent.
    assert len(services.event_fan_out(event_id=event.pk)) == 1
    assert services.event_fan_out(event_id=event.pk) == []
    delivery = Delivery.objects.get(event=event, endpoint=endpoint)
    assert delivery.status == "pending" and not delivery.attempts.exists()
    woken = []
    monkeypatch.setattr(delivery_module, "enqueue", lambda task, *args, **kwargs: woken.append(task.name) or True)
    swept = services.webhooks_sweep()
    assert swept["deliveries"] == 1 and woken == ["webhooks.tasks.deliveries_pump_task"]


def test_event_fan_out_skips_inactive_and_unsubscribed_endpoints(tenant):
    subscribed, _ = services.endpoint_create(tenant=tenant, url="https://93.184.216.34/a", event_types=["website.*"])
    services.endpoint_create(tenant=tenant, url="https://93.184.216.34/b", event_types=["deployment.*"])
    disabled, _ = services.endpoint_create(tenant=tenant, url="https://93.184.216.34/c", event_types=["*"])
    services.endpoint_disable(endpoint=disabled, reason="test", notify=False)
    other_tenant = tenant_services.tenant_create(name="Other", slug="other")
    services.endpoint_create(tenant=other_tenant, url="https://93.184.216.34/d", event_types=["*"])
    with transaction.atomic():
        event = services.event_record(tenant=tenant, type="website.created", data={"website": {}})
    services.event_fan_out(event_id=event.pk)
    assert list(Delivery.objects.filter(event=event).values_list("endpoint_id", flat=True)) == [subscribed.pk]


def test_event_nobody_subscribes_to_is_kept_and_queues_nothing(tenant, django_capture_on_commit_callbacks):
    services.endpoint_create(tenant=tenant, url="https://93.184.216.34/", event_types=["deployment.*"])
    with django_capture_on_commit_callbacks() as queued:
        unwanted = services.event_record(tenant=tenant, type="website.created", data={"website": {}})
    assert unwanted.fanned_out_at is not None and queued == []
    with django_capture_on_commit_callbacks() as queued:
        wanted = services.event_record(tenant=tenant, type="deployment.failed", data={"deployment": {}})
    assert wanted.fanned_out_at is None and len(queued) == 1


def test_events_recorded_before_the_fan_out_task_starts_share_it(
    tenant, receiver, settings, django_capture_on_commit_callbacks, monkeypatch
):
    """One queued fan-out task serves every event committed before it starts; it claims the oldest few
    (WEBHOOKS_FAN_OUT_EVENTS) and, when that many were waiting, queues the next task at once."""
    settings.WEBHOOKS_FAN_OUT_EVENTS = 2
    cache.delete(services.fan_out_queued_key())
    queued = []
    _capture_enqueue(monkeypatch, queued)
    services.endpoint_create(tenant=tenant, url=receiver.url(), event_types=["tenant.*"])

    def record(n: int) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            services.event_record(tenant=tenant, type="tenant.suspended", data={"n": n})

    for n in range(3):
        record(n)
    assert queued == ["events_fan_out_task"]
    assert services.events_deliver_pending() == 2
    assert queued == ["events_fan_out_task"] * 2  # two were waiting: maybe more, so the next task is queued
    assert sorted(json.loads(r.body)["data"]["n"] for r in receiver.received()) == [0, 1]
    record(3)  # committed after the task cleared the mark: queues a task of its own
    assert queued == ["events_fan_out_task"] * 3
    assert services.events_deliver_pending() == 2
    assert services.events_deliver_pending() == 0
    assert sorted(json.loads(r.body)["data"]["n"] for r in receiver.received()) == [0, 1, 2, 3]
    assert Delivery.objects.filter(endpoint__tenant=tenant, status="succeeded").count() == 4


@pytest.mark.parametrize("plan", ["planner's choice", "nested loop"])
def test_the_fan_out_claims_no_more_events_than_its_limit_whatever_the_plan(
    tenant, receiver, settings, django_capture_on_commit_callbacks, monkeypatch, plan
):
    """The claim's LIMIT holds whatever plan PostgreSQL picks. An `IN (SELECT ... LIMIT n FOR UPDATE SKIP
    LOCKED)` claimed all 3 waiting events with a limit of 2 when the planner chose a nested loop (as it
    did on a freshly created database): each rescan of the subquery skipped the rows already claimed and
    returned the next ones."""
    from django.db import connection

    settings.WEBHOOKS_FAN_OUT_EVENTS = 2
    _capture_enqueue(monkeypatch, [])
    services.endpoint_create(tenant=tenant, url=receiver.url(), event_types=["tenant.*"])
    for n in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            services.event_record(tenant=tenant, type="tenant.suspended", data={"n": n})
    if plan == "nested loop":
        with connection.cursor() as cursor:  # for the rest of the test's transaction
            for setting in ("enable_hashjoin", "enable_mergejoin", "enable_material", "enable_hashagg", "enable_sort"):
                cursor.execute(f"SET LOCAL {setting} = off")
    # The claim itself (the fan-out task claims again while its requests wait, and those may be quick).
    claimed = outbox.events_claim(limit=settings.WEBHOOKS_FAN_OUT_EVENTS)
    assert sorted(event.data["n"] for event, _ in claimed) == [0, 1]
    assert Event.objects.filter(tenant=tenant, fanned_out_at__isnull=True).count() == 1


def test_without_the_cache_every_event_queues_its_fan_out(
    tenant, receiver, django_capture_on_commit_callbacks, monkeypatch
):
    queued = []
    _capture_enqueue(monkeypatch, queued)
    monkeypatch.setattr(outbox.cache, "add", lambda *args, **kwargs: (_ for _ in ()).throw(ConnectionError()))
    services.endpoint_create(tenant=tenant, url=receiver.url(), event_types=["tenant.*"])
    for n in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            services.event_record(tenant=tenant, type="tenant.suspended", data={"n": n})
    assert queued == ["events_fan_out_task"] * 2
