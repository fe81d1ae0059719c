"""End to end: services -> outbox -> real Redis -> real Celery worker -> real receivers on 127.0.0.1."""

import json
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook

from tenants import services as tenant_services
from tests.helpers import wait_for
from webhooks import services
from webhooks.delivery import pump_lock_key
from webhooks.models import Delivery, Endpoint, Event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("webhooks_worker")]


@pytest.fixture
def tenant(db):
    return tenant_services.tenant_create(name="Hooks Co", slug="hooks-co")


def _endpoint(tenant, url, event_types=("*",)):
    return services.endpoint_create(tenant=tenant, url=url, event_types=list(event_types))


def _delivery(endpoint, status=None, timeout=15):
    def finished():
        queryset = Delivery.objects.filter(endpoint=endpoint)
        queryset = queryset.filter(status=status) if status else queryset.exclude(status=Delivery.Status.PENDING)
        return queryset.first()

    return wait_for(finished, timeout=timeout)


def test_event_is_delivered_signed_and_verifies_with_standardwebhooks(tenant, receiver):
    endpoint, secret = _endpoint(tenant, receiver.url(), ["website.*"])
    website = tenant_services.website_create(tenant=tenant, name="Shop", hostnames=["shop.example.test"])

    delivery = _delivery(endpoint, Delivery.Status.SUCCEEDED)
    (request,) = receiver.received()
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["type"] == "website.created" and payload["version"] == 1
    assert payload["data"]["website"] == {
        "id": str(website.pk), "name": "Shop", "status": "active", "hostnames": ["shop.example.test"],
    }  # fmt: skip
    assert request.headers["webhook-id"] == delivery.msg_id
    (attempt,) = delivery.attempts.all()
    assert attempt.status_code == 200 and attempt.succeeded and attempt.response_excerpt == '{"received": true}'
    # A wrong secret does not verify: the check above is real.
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 44).verify(request.body, request.headers)


def test_rolled_back_change_sends_nothing(tenant, receiver):
    endpoint, _ = _endpoint(tenant, receiver.url())
    with pytest.raises(RuntimeError), transaction.atomic():
        tenant_services.website_create(tenant=tenant, name="Never")
        raise RuntimeError("the change fails after the event was recorded")
    tenant_services.website_create(tenant=tenant, name="Kept")

    _delivery(endpoint, Delivery.Status.SUCCEEDED)
    assert [e["data"]["website"]["name"] for e in receiver.events()] == ["Kept"]
    assert not Event.objects.filter(data__website__name="Never").exists()


def test_retries_follow_the_schedule_then_fail_with_every_attempt_logged(tenant, receiver, settings):
    receiver.script["/hook"] = [("status", 500)]
    endpoint, _ = _endpoint(tenant, receiver.url())
    tenant_services.tenant_suspend(tenant=tenant, reason="unpaid")

    delivery = _delivery(endpoint, Delivery.Status.FAILED)
    attempts = list(delivery.attempts.all())
    assert len(attempts) == len(settings.WEBHOOKS_RETRY_SCHEDULE) == len(receiver.received())
    assert all(a.status_code == 500 and a.error == "HTTP 500" and len(a.response_excerpt) == 1024 for a in attempts)
    # Same webhook-id on every retry; gaps at least the scheduled delay minus jitter.
    assert {r.headers["webhook-id"] for r in receiver.received()} == {delivery.msg_id}
    times = [r.at for r in receiver.received()]
    for index, (earlier, later) in enumerate(zip(times, times[1:], strict=False), start=1):
        assert later - earlier >= settings.WEBHOOKS_RETRY_SCHEDULE[index] * 0.9 - 0.05
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.failing_since is not None


def test_429_retry_after_is_honoured(tenant, receiver):
    receiver.script["/hook"] = [("retry_after", 429, "2"), ("ok",)]
    endpoint, _ = _endpoint(tenant, receiver.url())
    tenant_services.tenant_suspend(tenant=tenant, reason="x")

    delivery = _delivery(endpoint, Delivery.Status.SUCCEEDED)
    first, second = receiver.received()
    assert second.at - first.at >= 1.9  # the schedule alone would retry after 0.2 s
    assert [a.status_code for a in delivery.attempts.all()] == [429, 200]


def test_a_slow_lane_lock_left_by_a_dead_worker_holds_a_retry_back_only_until_it_runs_out(tenant, receiver):
    """A worker killed inside the slow lane's loop leaves the loop's lock until it expires. The loop queued
    for a retry meanwhile is refused by that lock: it comes back when the lock runs out, rather than leaving
    the retry to the sweeper (there is no sweeper in these tests: without that the delivery never ends)."""
    receiver.script["/hook"] = [("retry_after", 429, "1"), ("ok",)]
    endpoint, _ = _endpoint(tenant, receiver.url())
    cache.set(pump_lock_key(), "dead worker", timeout=4)
    locked_at = time.monotonic()
    tenant_services.tenant_suspend(tenant=tenant, reason="x")

    delivery = _delivery(endpoint, Delivery.Status.SUCCEEDED, timeout=12)
    first, second = receiver.received()
    assert second.at - locked_at >= 3.5  # not before the dead worker's lock ran out
    assert [a.status_code for a in delivery.attempts.all()] == [429, 200]


def test_the_session_workers_slow_lane_sends_these_deliveries_as_configured_here(
    tenant, receiver, celery_worker, monkeypatch
):
    """The session's worker (every queue, tests/conftest.py) shares this database, and a slow-lane loop
    claims every due delivery whichever queue woke it: one it runs must send as configured here. It once
    failed a retry of these tests as not HTTPS (a fresh-clone run: the 429 retry never came)."""
    from webhooks import delivery as delivery_module
    from webhooks import tasks

    endpoint, _ = _endpoint(tenant, receiver.url())
    monkeypatch.setattr(delivery_module, "pump_wake", lambda at=None: None)  # only the session worker's loop
    # Fanned out here, in the transaction that records it: the fan-out task its commit queues could
    # otherwise have fanned it out first (a fresh-clone run: this fan-out then found nothing to do).
    with transaction.atomic():
        event = services.event_record(tenant=tenant, type="tenant.suspended", data={"tenant": {"id": str(tenant.pk)}})
        assert len(services.event_fan_out(event_id=event.pk)) == 1
    tasks.deliveries_pump_task.apply_async(queue="webhooks")  # consumed by the session worker only

    delivery = _delivery(endpoint)
    assert delivery.status == Delivery.Status.SUCCEEDED, list(delivery.attempts.values("error"))
    assert len(receiver.received()) == 1


def test_410_gone_disables_the_endpoint_and_emits_endpoint_disabled(tenant, receiver):
    receiver.script["/gone"] = [("status", 410)]
    gone, _ = _endpoint(tenant, receiver.url("/gone"), ["website.*"])
    watcher, _ = _endpoint(tenant, receiver.url("/watch"), ["webhook.*"])
    tenant_services.website_create(tenant=tenant, name="Site")

    assert _delivery(gone).status == Delivery.Status.FAILED
    gone.refresh_from_db()
    assert not gone.is_active and "410" in gone.disabled_reason
    _delivery(watcher, Delivery.Status.SUCCEEDED)
    (event,) = receiver.events("/watch")
    assert event["type"] == "webhook.endpoint.disabled" and event["data"]["endpoint"]["id"] == str(gone.pk)
    assert len(receiver.received("/gone")) == 1  # no retry after 410


def test_endpoint_failing_for_days_is_disabled(tenant, receiver):
    receiver.script["/hook"] = [("status", 500)]
    endpoint, _ = _endpoint(tenant, receiver.url(), ["tenant.*"])
    Endpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(days=6))
    tenant_services.tenant_suspend(tenant=tenant, reason="x")

    delivery = _delivery(endpoint)
    assert delivery.status == Delivery.Status.FAILED and delivery.attempt_count == 1
    endpoint.refresh_from_db()
    assert not endpoint.is_active and endpoint.disabled_reason == "failing for too long"
    assert Event.objects.filter(type="webhook.endpoint.disabled", tenant=tenant).exists()


def test_dropped_connection_and_slow_receiver_are_retried(tenant, receiver):
    receiver.script["/drop"] = [("drop",), ("ok",)]
    receiver.script["/slow"] = [("slow", 4), ("ok",)]
    drop, _ = _endpoint(tenant, receiver.url("/drop"))
    slow, _ = _endpoint(tenant, receiver.url("/slow"))
    tenant_services.tenant_suspend(tenant=tenant, reason="x")

    for endpoint in (drop, slow):
        delivery = _delivery(endpoint, Delivery.Status.SUCCEEDED)
        first, second = delivery.attempts.all()
        assert first.status_code is None and first.error and not first.succeeded
        assert second.status_code == 200
    assert "Timeout" in slow.deliveries.get().attempts.first().error


def test_worker_killed_mid_request_leaves_a_lost_attempt_and_the_resend_is_its_own(tenant, receiver, webhooks_worker):
    """The attempt is recorded (started) before its request goes out; the worker dies mid-request; once its
    lease runs out the sweeper marks that attempt lost, and the resend is recorded as attempt 2."""
    receiver.script["/hook"] = [("hang",), ("ok",)]
    endpoint, secret = _endpoint(tenant, receiver.url())
    tenant_services.tenant_suspend(tenant=tenant, reason="x")

    wait_for(lambda: receiver.received(), timeout=15)
    webhooks_worker.kill()  # mid-request: the receiver has not answered
    receiver.release.set()
    delivery = Delivery.objects.get(endpoint=endpoint)
    (attempt,) = delivery.attempts.all()
    assert attempt.state == "started" and attempt.number == 1 and delivery.lease_owner
    wait_for(lambda: Delivery.objects.filter(pk=delivery.pk, lease_expires_at__lt=timezone.now()).exists(), timeout=10)
    webhooks_worker.start()  # its sweep at start finds the expired lease

    delivery = _delivery(endpoint, Delivery.Status.SUCCEEDED)
    lost, resent = delivery.attempts.all()
    assert lost.state == "lost" and not lost.succeeded and lost.error.startswith("Lost:")
    assert resent.state == "finished" and resent.succeeded and resent.number == 2 and resent.status_code == 200
    assert delivery.attempt_count == 2 and not delivery.lease_owner
    first, second = receiver.received()
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery.msg_id
    Webhook(secret).verify(second.body, second.headers)


def test_secret_rotation_signs_with_both_secrets_during_grace(tenant, receiver):
    endpoint, old_secret = _endpoint(tenant, receiver.url(), ["tenant.*"])
    new_secret = services.endpoint_rotate_secret(endpoint=endpoint, grace_seconds=3600)
    tenant_services.tenant_suspend(tenant=tenant, reason="x")
    _delivery(endpoint, Delivery.Status.SUCCEEDED)
    (request,) = receiver.received()
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(old_secret).verify(request.body, request.headers)
    Webhook(new_secret).verify(request.body, request.headers)

    newest = services.endpoint_rotate_secret(endpoint=endpoint, grace_seconds=0)
    tenant_services.tenant_reactivate(tenant=tenant)
    wait_for(lambda: len(receiver.received()) == 2)
    latest = receiver.received()[1]
    assert len(latest.headers["webhook-signature"].split(" ")) == 1
    Webhook(newest).verify(latest.body, latest.headers)
    with pytest.raises(Exception, match="signature"):
        Webhook(new_secret).verify(latest.body, latest.headers)


def test_deployment_lifecycle_events_follow_wildcard_subscriptions(tenant, receiver):
    deployments, _ = _endpoint(tenant, receiver.url("/deploy"), ["deployment.*"])
    websites, _ = _endpoint(tenant, receiver.url("/site"), ["website.created"])
    website = tenant_services.website_create(tenant=tenant, name="Blog")
    from tenants.bundles import bundle_build

    bundle = bundle_build({"index.html": "<h1>v1</h1>"})
    deployment = tenant_services.deployment_create(website=website, bundle=bundle, run=False)
    tenant_services.deployment_execute(deployment=deployment)

    wait_for(lambda: len(receiver.received("/deploy")) == 2 and len(receiver.received("/site")) == 1)
    types = sorted(e["type"] for e in receiver.events("/deploy"))
    assert types == ["deployment.started", "deployment.succeeded"]
    succeeded = next(e for e in receiver.events("/deploy") if e["type"] == "deployment.succeeded")
    assert succeeded["data"]["deployment"]["number"] == 1 and succeeded["tenant"] == str(tenant.pk)
    assert [e["type"] for e in receiver.events("/site")] == ["website.created"]


def test_secrets_never_reach_the_worker_log(tenant, receiver, webhooks_worker):
    endpoint, secret = _endpoint(tenant, receiver.url())
    tenant_services.tenant_suspend(tenant=tenant, reason="x")
    _delivery(endpoint, Delivery.Status.SUCCEEDED)
    log = webhooks_worker.log_path.read_text()
    assert "webhook attempt delivery=" in log  # the log is the worker's, and attempts are logged
    assert secret not in log and secret.removeprefix("whsec_") not in log
    assert secret not in json.dumps(list(Endpoint.objects.values("secret_encrypted")))


def test_v1a_deliveries_from_the_worker_verify_with_pynacl_and_the_private_key_stays_out_of_its_log(
    tenant, receiver, webhooks_worker
):
    import base64

    import nacl.signing

    from webhooks import encryption

    endpoint, secret = services.endpoint_create(
        tenant=tenant, url=receiver.url(), event_types=["*"], signature_scheme="v1a"
    )
    assert secret is None
    tenant_services.tenant_suspend(tenant=tenant, reason="x")
    delivery = _delivery(endpoint, Delivery.Status.SUCCEEDED)
    (request,) = receiver.received()
    version, _, signature = request.headers["webhook-signature"].partition(",")
    signed = f"{delivery.msg_id}.{request.headers['webhook-timestamp']}.".encode() + request.body
    verify_key = nacl.signing.VerifyKey(base64.b64decode(endpoint.public_key.removeprefix("whpk_")))
    assert version == "v1a" and verify_key.verify(signed, base64.b64decode(signature)) == signed
    private_key = encryption.decrypt(endpoint.secret_encrypted)
    log = webhooks_worker.log_path.read_text()
    assert f"webhook attempt delivery={delivery.pk}" in log
    assert private_key.startswith("whsk_") and private_key.removeprefix("whsk_") not in log and "whsk_" not in log


def test_event_committed_while_the_broker_is_down_is_delivered_by_the_sweeper(
    tenant, receiver, test_database_env, settings
):
    """A real process with an unreachable broker commits a change: the event row is kept, the enqueue
    failure is logged, and the sweeper later fans it out through the real broker and worker."""
    import subprocess
    import sys

    endpoint, _ = _endpoint(tenant, receiver.url(), ["tenant.*"])
    env = {**test_database_env, "CELERY_BROKER_URL": "redis://127.0.0.1:1/0", "WEBHOOKS_QUEUE": settings.WEBHOOKS_QUEUE}
    script = (
        "import django; django.setup()\n"
        "from tenants import services; from tenants.models import Tenant\n"
        f"services.tenant_suspend(tenant=Tenant.objects.get(pk='{tenant.pk}'), reason='broker down')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "its sweeper queues it again" in result.stderr
    event = Event.objects.get(tenant=tenant, type="tenant.suspended")
    assert event.fanned_out_at is None and not receiver.received()

    settings.WEBHOOKS_REQUEUE_AFTER_SECONDS = 0
    assert services.webhooks_sweep()["events"] >= 1
    _delivery(endpoint, Delivery.Status.SUCCEEDED)
    assert receiver.events()[0]["id"] == str(event.pk)


def test_fan_out_larger_than_a_batch_commits_and_queues_the_rest(tenant, receiver, settings):
    """More subscribers than a batch: the deliveries are committed and the rest queued before the first
    batch is attempted (by this process here; the rest by the worker), each sent exactly once."""
    settings.WEBHOOKS_BATCH_SIZE = 2
    endpoints = [_endpoint(tenant, receiver.url(f"/hook/{index}"))[0] for index in range(3)]
    event = Event.objects.create(tenant=tenant, type="tenant.suspended", data={"n": 1})

    assert services.event_deliver(event_id=event.pk) == 3
    assert services.event_deliver(event_id=event.pk) == 0  # fanned out once
    for endpoint in endpoints:
        _delivery(endpoint, Delivery.Status.SUCCEEDED)
    assert sorted(request.path for request in receiver.received()) == ["/hook/0", "/hook/1", "/hook/2"]
    assert len({request.headers["webhook-id"] for request in receiver.received()}) == 3


def test_response_body_with_nul_bytes_is_recorded(tenant, receiver):
    """PostgreSQL text cannot hold NUL: the excerpt keeps a replacement character instead of failing the
    batch (which would roll back and resend every delivery of it)."""
    receiver.script["/hook"] = [("body", b"ok\x00done")]
    endpoint, _ = _endpoint(tenant, receiver.url())
    tenant_services.tenant_suspend(tenant=tenant, reason="x")
    delivery = _delivery(endpoint, Delivery.Status.SUCCEEDED)
    (attempt,) = delivery.attempts.all()
    assert attempt.response_excerpt == "ok\ufffddone"
    assert len(receiver.received()) == 1
