import pytest

from webhooks import services
from webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivery(tenant):
    endpoint, secret = services.endpoint_create(tenant=tenant, url="https://93.184.216.34/in", event_types=["*"])
    event = services.event_record(tenant=tenant, type="tenant.suspended", data={"tenant": {}})
    services.event_fan_out(event_id=event.pk)
    delivery = Delivery.objects.get(event=event)
    Delivery.objects.filter(pk=delivery.pk).update(status="failed")
    delivery.secret = secret
    return delivery


def test_admin_pages_render_without_secrets(admin_client_logged_in, delivery):
    for url in (
        "/admin/webhooks/endpoint/?is_active__exact=1",
        f"/admin/webhooks/endpoint/{delivery.endpoint_id}/change/",
        "/admin/webhooks/delivery/?status__exact=failed&event__type=tenant.suspended",
        f"/admin/webhooks/delivery/{delivery.pk}/change/",
        "/admin/webhooks/event/",
    ):
        response = admin_client_logged_in.get(url)
        assert response.status_code == 200, url
        assert delivery.secret.encode() not in response.content
        assert delivery.endpoint.secret_encrypted.encode() not in response.content


def test_admin_actions_disable_enable_redeliver(admin_client_logged_in, delivery, django_capture_on_commit_callbacks):
    endpoint_id = str(delivery.endpoint_id)
    admin_client_logged_in.post(
        "/admin/webhooks/endpoint/",
        {"action": "disable_selected", "_selected_action": [endpoint_id], "apply": "1", "reason": "r"},
    )
    assert not Endpoint.objects.get(pk=endpoint_id).is_active
    admin_client_logged_in.post(
        "/admin/webhooks/endpoint/",
        {"action": "enable_selected", "_selected_action": [endpoint_id], "apply": "1", "reason": "r"},
    )
    assert Endpoint.objects.get(pk=endpoint_id).is_active
    with django_capture_on_commit_callbacks() as queued:
        admin_client_logged_in.post(
            "/admin/webhooks/delivery/",
            {"action": "redeliver_selected", "_selected_action": [str(delivery.pk)], "apply": "1", "reason": "r"},
        )
    assert Delivery.objects.get(pk=delivery.pk).status == "pending" and len(queued) == 1


def test_an_endpoint_edit_goes_through_the_service_audited_and_a_refusal_saves_nothing(
    admin_client_logged_in, delivery
):
    from console.models import AuditLogEntry

    change = f"/admin/webhooks/endpoint/{delivery.endpoint_id}/change/"
    form = {"description": "Orders", "event_types": '["tenant.*"]', "audit_reason": "narrower"}
    assert admin_client_logged_in.post(change, form).status_code == 302
    endpoint = Endpoint.objects.get(pk=delivery.endpoint_id)
    assert (endpoint.description, endpoint.event_types) == ("Orders", ["tenant.*"])
    entry = AuditLogEntry.objects.get(action="endpoint.update")
    assert (entry.reason, entry.detail["event_types"]) == ("narrower", ["tenant.*"])

    refused = admin_client_logged_in.post(change, {**form, "event_types": '["no.such.event"]'}, follow=True)
    assert "Not saved:" in refused.content.decode()
    assert Endpoint.objects.get(pk=delivery.endpoint_id).event_types == ["tenant.*"]
