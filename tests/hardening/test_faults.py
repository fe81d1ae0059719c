"""Fault injection on the local stack: what the user sees while a component is down, and that nothing is
lost once it is back. The faults already tested next to their capability are listed (with their tests)
in tests/hardening/README.md; these are the ones that were not.
"""

import os
import subprocess
import sys
import uuid

import pytest

from tests.conftest import REPO_ROOT
from tests.helpers import wait_for
from tests.sitebundles import bundle_build, site_v1, site_v2, upload_file
from tests.webhooks import conftest as webhooks_fixtures

# The webhooks tests' own fixtures: HTTP receivers on 127.0.0.1 and a webhooks worker on a queue of its
# own (with its settings, autouse).
receiver, webhooks_worker = webhooks_fixtures.receiver, webhooks_fixtures.webhooks_worker
webhooks_settings = webhooks_fixtures.webhooks_settings

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stack]


def stack(action: str, service: str) -> None:
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "deploy/local/stack"), action, service],
        check=True, capture_output=True, timeout=120, env=os.environ,
    )  # fmt: skip


@pytest.fixture
def stopped():
    """stopped("moto") stops a service of the local stack; it is started again afterwards."""
    names = []

    def stop(name: str):
        names.append(name)
        stack("stop", name)

    yield stop
    for name in names:
        stack("start", name)
    if "moto" in names:
        # moto keeps objects in memory: re-create the S3 repository's stanza for the backup tests.
        from backups.engines import get_engine, reset_engines

        reset_engines()
        get_engine("pgbackrest").setup()


@pytest.fixture
def key_client():
    from rest_framework.test import APIClient

    from apikeys import services as apikey_services
    from apikeys.scopes import SCOPES
    from tenants import services as tenant_services

    tenant = tenant_services.tenant_create(name="Faults", slug=f"faults-{uuid.uuid4().hex[:8]}", tier="professional")
    _, raw_key = apikey_services.apikey_create(tenant=tenant, name="faults", scopes=list(SCOPES))
    return tenant, APIClient(HTTP_AUTHORIZATION=f"Bearer {raw_key}")


def test_broker_down_while_events_are_produced_then_the_outbox_catches_up(
    key_client, receiver, webhooks_worker, stopped, settings
):
    """Redis (cache, rate limits and the broker) stopped: the API keeps answering (gateway fails open),
    the write commits with its event in the outbox; when Redis is back the sweeper delivers it."""
    from webhooks import services as webhook_services
    from webhooks.models import Delivery, Event

    tenant, client = key_client
    created = client.post(
        "/api/v1/webhooks/endpoints/", {"url": receiver.url(), "event_types": ["website.*"]}, format="json"
    )
    assert created.status_code == 201, created.content

    stopped("redis")
    response = client.post("/api/v1/websites/", {"name": "Made while the broker is down"}, format="json")
    assert response.status_code == 201, response.content  # what the user sees: success
    website_id = response.json()["id"]
    event = Event.objects.get(tenant=tenant, type="website.created")
    assert event.fanned_out_at is None and not receiver.received()  # kept, not sent

    stack("start", "redis")
    settings.WEBHOOKS_REQUEUE_AFTER_SECONDS = 0
    # The restarted Redis is empty: whatever was queued before is gone; the outbox is the record.
    wait_for(lambda: webhook_services.webhooks_sweep()["events"] >= 0 and receiver.received(), timeout=60, interval=1)
    (body,) = receiver.events()
    assert body["type"] == "website.created" and body["data"]["website"]["id"] == website_id
    assert Delivery.objects.get(event=event).status == Delivery.Status.SUCCEEDED


@pytest.fixture
def live_website(key_client):
    from tenants import services as tenant_services

    tenant, client = key_client
    host = f"www.{uuid.uuid4().hex[:10]}.test"
    website = tenant_services.website_create(tenant=tenant, name="Faulty", hostnames=[host])
    first = tenant_services.deployment_create(website=website, bundle=bundle_build(site_v1()), run=False)
    first = tenant_services.deployment_execute(deployment=first)
    return website, host, client, first


def _origin_get(host: str, path: str = "/"):
    """A visitor's request to the origin (the Django app serves websites by Host)."""
    from django.test import Client

    return Client().get(path, headers={"Host": host})


def test_s3_unavailable_during_a_deploy(live_website, stopped):
    from tenants import services as tenant_services
    from tenants.models import Deployment

    website, host, client, first = live_website
    assert _origin_get(host).content == b"<h1>home v1</h1>"
    pending = tenant_services.deployment_create(website=website, bundle=bundle_build(site_v2()), run=False)

    stopped("moto")
    # An upload is refused with a clear, retryable error; no deployment row is left behind.
    count = Deployment.objects.filter(website=website).count()
    bundle = upload_file(bundle_build(site_v2()))
    response = client.post(
        f"/api/v1/websites/{website.pk}/deployments/", {"description": "x", "bundle": bundle}, format="multipart"
    )
    assert response.status_code == 503 and response.json()["error"]["code"] == "storage_unavailable"
    assert Deployment.objects.filter(website=website).count() == count
    # A deployment that runs now fails visibly; the live version stays the active one.
    failed = tenant_services.deployment_execute(deployment=pending)
    assert failed.status == Deployment.Status.FAILED and "storage" in failed.error
    website.refresh_from_db()
    assert website.active_deployment_id == first.pk
    # Visitors still get the live version (the origin's file cache) or a 503 with Retry-After, never a 500.
    page = _origin_get(host)
    assert (page.status_code, page.content) == (200, b"<h1>home v1</h1>") or (
        page.status_code == 503 and page.headers["Retry-After"]
    )

    stack("start", "moto")
    # Back: the same upload is accepted and goes live.
    retried = tenant_services.deployment_create(website=website, bundle=bundle_build(site_v2()), run=False)
    retried = tenant_services.deployment_execute(deployment=retried)
    assert retried.status == Deployment.Status.SUCCEEDED
    assert _origin_get(host).content == b"<h1>home v2</h1>"
    assert Deployment.objects.get(pk=failed.pk).status == Deployment.Status.FAILED  # the history is kept


def test_s3_unavailable_during_a_tenant_export(key_client, stopped):
    from backups import services as backup_services
    from backups.engines.base import BackupError
    from backups.models import TenantExport

    stopped("moto")
    with pytest.raises(BackupError, match="tenant export failed"):
        backup_services.tenant_export_create()
    failed = TenantExport.objects.get()
    assert failed.status == TenantExport.Status.FAILED and failed.error and not failed.location

    stack("start", "moto")
    done = backup_services.tenant_export_create()
    assert done.status == TenantExport.Status.SUCCEEDED and done.location.startswith("s3://")
    assert TenantExport.objects.filter(status=TenantExport.Status.FAILED).count() == 1  # recorded, not erased
