"""Webhook workflows in the console: support redelivers and replays; only platform admins disable/enable."""

from datetime import timedelta

import pytest
from django.utils import timezone

from console.models import AuditLogEntry
from webhooks import services
from webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.django_db

ENDPOINTS = "/admin/webhooks/endpoint/"


@pytest.fixture
def failed_delivery(tenant):
    endpoint, _ = services.endpoint_create(tenant=tenant, url="https://93.184.216.34/in", event_types=["*"])
    event = services.endpoint_ping(endpoint=endpoint)
    services.event_fan_out(event_id=event.pk)
    delivery = Delivery.objects.get(event=event)
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED)
    return delivery


def test_endpoint_disable_enable_need_platform_admin(support_user, platform_admin, client_for, failed_delivery):
    endpoint_id = str(failed_delivery.endpoint_id)
    data = {"action": "disable_selected", "_selected_action": [endpoint_id], "apply": "1", "reason": "410s for days"}
    assert client_for(support_user).post(ENDPOINTS, data).status_code == 403
    assert Endpoint.objects.get(pk=endpoint_id).is_active
    client = client_for(platform_admin)
    confirm = client.post(ENDPOINTS, {"action": "disable_selected", "_selected_action": [endpoint_id]})
    assert b"Yes, disable" in confirm.content and Endpoint.objects.get(pk=endpoint_id).is_active
    client.post(ENDPOINTS, data)
    endpoint = Endpoint.objects.get(pk=endpoint_id)
    assert not endpoint.is_active and endpoint.disabled_reason == "410s for days"
    client.post(ENDPOINTS, {**data, "action": "enable_selected", "reason": "receiver fixed"})
    assert Endpoint.objects.get(pk=endpoint_id).is_active
    assert list(AuditLogEntry.objects.order_by("id").values_list("action", "actor_username")) == [
        ("endpoint.disable", "pat-admin"),
        ("endpoint.enable", "pat-admin"),
    ]


def test_support_replays_failed_deliveries_since_a_time(support_user, client_for, failed_delivery):
    since = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    data = {"action": "replay_failed", "_selected_action": [str(failed_delivery.endpoint_id)], "apply": "1",
            "reason": "receiver was down", "since": since}  # fmt: skip
    response = client_for(support_user).post(ENDPOINTS, data, follow=True)
    assert b"queued again" in response.content
    assert Delivery.objects.get(pk=failed_delivery.pk).status == Delivery.Status.PENDING
    entry = AuditLogEntry.objects.get()
    assert entry.action == "endpoint.replay_failed" and entry.detail["replayed"] == 1


def test_redelivery_to_a_disabled_endpoint_is_refused_and_recorded(platform_admin, client_for, failed_delivery):
    services.endpoint_disable(endpoint=failed_delivery.endpoint, reason="x", notify=False)
    data = {"action": "redeliver_selected", "_selected_action": [str(failed_delivery.pk)], "apply": "1", "reason": "r"}
    response = client_for(platform_admin).post("/admin/webhooks/delivery/", data, follow=True)
    assert b"enable it first" in response.content
    assert Delivery.objects.get(pk=failed_delivery.pk).status == Delivery.Status.FAILED
    assert AuditLogEntry.objects.get().outcome == AuditLogEntry.Outcome.REFUSED


def test_platform_admin_closes_an_open_breaker_and_sees_it_in_the_list(
    support_user, platform_admin, client_for, failed_delivery
):
    endpoint_id = str(failed_delivery.endpoint_id)
    now = timezone.now()
    Endpoint.objects.filter(pk=endpoint_id).update(
        breaker_state="open", lane="slow", consecutive_failures=12, breaker_opened_at=now,
        breaker_probe_at=now + timedelta(minutes=1),
    )  # fmt: skip
    client = client_for(platform_admin)
    assert b"breaker-open" in client.get(ENDPOINTS).content
    data = {"action": "reset_breaker", "_selected_action": [endpoint_id], "apply": "1", "reason": "receiver is back"}
    assert client_for(support_user).post(ENDPOINTS, data).status_code == 403
    assert Endpoint.objects.get(pk=endpoint_id).breaker_state == "open"
    client.post(ENDPOINTS, data)
    endpoint = Endpoint.objects.get(pk=endpoint_id)
    assert (endpoint.breaker_state, endpoint.lane, endpoint.consecutive_failures) == ("closed", "fast", 0)
    assert b"breaker-closed" in client.get(ENDPOINTS).content
    entry = AuditLogEntry.objects.get()
    assert entry.action == "endpoint.breaker_reset" and entry.detail["breaker_state"] == "closed"
