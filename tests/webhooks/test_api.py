"""The webhooks API: endpoints, secrets shown once, ping, deliveries with attempts, redeliver, replay."""

import logging

import pytest
from django.utils import timezone

from tenants import services as tenant_services
from tests.helpers import wait_for
from webhooks.models import Delivery, Endpoint

ENDPOINTS = "/api/v1/webhooks/endpoints/"


def _create(client, tenant, url, event_types=("*",)):
    return client.post(
        ENDPOINTS, {"tenant": str(tenant.pk), "url": url, "event_types": list(event_types)}, format="json"
    )


@pytest.mark.django_db
def test_api_keys_need_webhooks_manage_and_stay_in_their_tenant(tenant, receiver):
    from rest_framework.test import APIClient

    from apikeys import services as apikey_services
    from webhooks import services as webhook_services

    _, without = apikey_services.apikey_create(tenant=tenant, name="reader", scopes=["websites:read"])
    _, with_scope = apikey_services.apikey_create(tenant=tenant, name="hooks", scopes=["webhooks:manage"])
    refused = APIClient(HTTP_AUTHORIZATION=f"Bearer {without}").get(ENDPOINTS)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_scope"

    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {with_scope}")
    response = client.post(ENDPOINTS, {"url": receiver.url(), "event_types": ["deployment.*"]}, format="json")
    assert response.status_code == 201, response.content
    assert Endpoint.objects.get(pk=response.json()["id"]).tenant_id == tenant.pk

    other = tenant_services.tenant_create(name="Other", slug="other-hooks")
    theirs, _ = webhook_services.endpoint_create(tenant=other, url=receiver.url(), event_types=["*"])
    for method, url in (
        ("get", f"{ENDPOINTS}{theirs.pk}/"),
        ("patch", f"{ENDPOINTS}{theirs.pk}/"),
        ("delete", f"{ENDPOINTS}{theirs.pk}/"),
        ("post", f"{ENDPOINTS}{theirs.pk}/ping/"),
        ("post", f"{ENDPOINTS}{theirs.pk}/rotate-secret/"),
    ):
        response = getattr(client, method)(url, {}, format="json")
        assert response.status_code == 404, (method, url, response.content)
    mine = str(Endpoint.objects.get(tenant=tenant).pk)
    assert [item["id"] for item in client.get(ENDPOINTS).json()["results"]] == [mine]


@pytest.mark.django_db
def test_crud_and_secret_shown_only_at_creation(staff_client, tenant, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    response = _create(staff_client, tenant, receiver.url(), ["deployment.*", "website.created"])
    assert response.status_code == 201, response.content
    created = response.json()
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) >= 6 + 32
    endpoint_url = f"{ENDPOINTS}{created['id']}/"

    listed = staff_client.get(ENDPOINTS).json()["results"]
    detail = staff_client.get(endpoint_url).json()
    assert {key: detail[key] for key in ("breaker_state", "lane", "consecutive_failures", "breaker_probe_at")} == {
        "breaker_state": "closed", "lane": "fast", "consecutive_failures": 0, "breaker_probe_at": None,
    }  # fmt: skip
    Endpoint.objects.filter(pk=created["id"]).update(breaker_state="open", consecutive_failures=10, lane="slow")
    opened = staff_client.get(endpoint_url).json()
    assert (opened["breaker_state"], opened["consecutive_failures"], opened["lane"]) == ("open", 10, "slow")
    updated = staff_client.patch(endpoint_url, {"event_types": ["tenant.*"], "description": "ops"}, format="json")
    assert updated.status_code == 200 and updated.json()["event_types"] == ["tenant.*"]
    rotated = staff_client.post(f"{endpoint_url}rotate-secret/", {"grace_seconds": 60}, format="json").json()
    assert rotated["secret"] != secret and rotated["previous_secret_expires_at"]
    for output in (listed, detail, updated.json()):
        assert secret not in str(output) and "secret" not in str(output).replace("previous_secret_expires_at", "")
    stored = Endpoint.objects.get(pk=created["id"])
    assert secret not in stored.secret_encrypted and rotated["secret"] not in stored.secret_encrypted
    assert secret not in caplog.text and rotated["secret"] not in caplog.text

    assert staff_client.delete(endpoint_url).status_code == 204
    assert staff_client.get(endpoint_url).status_code == 404


@pytest.mark.django_db
def test_bad_input_gets_clear_errors(staff_client, tenant, receiver, settings):
    assert _create(staff_client, tenant, receiver.url(), ["deploymnt.*"]).json()["error"]["fields"]["event_types"]
    assert _create(staff_client, tenant, receiver.url(), []).json()["error"]["fields"]["event_types"]
    assert _create(staff_client, tenant, receiver.url(), ["ping"]).status_code == 400  # ping is not subscribable
    missing_tenant = staff_client.post(ENDPOINTS, {"url": receiver.url(), "event_types": ["*"]}, format="json")
    assert missing_tenant.json()["error"]["fields"] == {"tenant": ["This field is required."]}
    settings.WEBHOOKS_MAX_ENDPOINTS_PER_TENANT = 1
    assert _create(staff_client, tenant, receiver.url(), ["*"]).status_code == 201
    over = _create(staff_client, tenant, receiver.url(), ["*"])
    assert over.status_code == 409 and over.json()["error"]["code"] == "limit_reached"
    bad_since = staff_client.post(
        f"{ENDPOINTS}{Endpoint.objects.get().pk}/replay/", {"since": "yesterday"}, format="json"
    )
    assert bad_since.status_code == 400 and "since" in bad_since.json()["error"]["fields"]


def test_anonymous_is_refused(client, db):
    assert client.get(ENDPOINTS).status_code in (401, 403)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("webhooks_worker")
def test_ping_deliveries_redeliver_and_replay(staff_client, receiver):
    tenant = tenant_services.tenant_create(name="Api Co", slug="api-co")
    receiver.script["/hook"] = [("status", 500)]
    endpoint_id = _create(staff_client, tenant, receiver.url(), ["website.*"]).json()["id"]
    started = timezone.now()

    assert staff_client.post(f"{ENDPOINTS}{endpoint_id}/ping/").status_code == 202
    tenant_services.website_create(tenant=tenant, name="One")
    wait_for(lambda: Delivery.objects.filter(endpoint_id=endpoint_id, status="failed").count() == 2, timeout=20)
    assert {e["type"] for e in receiver.events()} == {"ping", "website.created"}

    deliveries = staff_client.get(f"{ENDPOINTS}{endpoint_id}/deliveries/?status=failed").json()["results"]
    assert len(deliveries) == 2 and all(len(d["attempts"]) == 4 for d in deliveries)
    assert deliveries[0]["attempts"][0]["status_code"] == 500 and deliveries[0]["attempts"][0]["error"] == "HTTP 500"

    receiver.script["/hook"] = [("ok",)]
    ping = next(d for d in deliveries if d["event_type"] == "ping")
    response = staff_client.post(f"/api/v1/webhooks/deliveries/{ping['id']}/redeliver/")
    assert response.status_code == 202
    wait_for(lambda: Delivery.objects.get(pk=ping["id"]).status == "succeeded")
    detail = staff_client.get(f"/api/v1/webhooks/deliveries/{ping['id']}/").json()
    assert detail["attempts"][-1] == {**detail["attempts"][-1], "status_code": 200, "manual": True, "number": 5}
    assert receiver.received()[-1].headers["webhook-id"] == ping["webhook_id"]

    replay = staff_client.post(f"{ENDPOINTS}{endpoint_id}/replay/", {"since": started.isoformat()}, format="json")
    assert replay.status_code == 202 and replay.json() == {"queued": 1}
    wait_for(lambda: not Delivery.objects.filter(endpoint_id=endpoint_id).exclude(status="succeeded").exists())


@pytest.mark.django_db
def test_event_types_lists_the_catalogue(staff_client):
    response = staff_client.get("/api/v1/webhooks/event-types/")
    assert response.status_code == 200
    by_name = {item["name"]: item for item in response.json()}
    assert by_name["deployment.succeeded"]["version"] == 1
    assert "deployment" in by_name["deployment.succeeded"]["example"]
    assert "backup.tenant_export.failed" in by_name and "ping" in by_name


@pytest.mark.django_db
def test_openapi_schema_has_the_webhooks_api(client):
    import yaml
    from openapi_spec_validator import validate

    schema = yaml.safe_load(client.get("/api/schema/").content)
    validate(schema)
    for path in (
        "/api/v1/webhooks/endpoints/",
        "/api/v1/webhooks/endpoints/{id}/rotate-secret/",
        "/api/v1/webhooks/endpoints/{id}/replay/",
        "/api/v1/webhooks/deliveries/{id}/redeliver/",
        "/api/v1/webhooks/event-types/",
        "/api/v1/webhooks/keys/",
    ):
        assert path in schema["paths"], path
