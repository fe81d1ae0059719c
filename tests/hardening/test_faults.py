"""Fault injection on the local stack: what the user sees while a component is down, and that nothing is
lost once it is back. The faults already tested next to their capability are listed (with their tests)
in tests/hardening/README.md; these are the ones that were not.
"""

import uuid

import pytest

from tests.helpers import hostnames_verified, stack
from tests.sitebundles import bundle_build, site_v1, site_v2, upload_file

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stack]


@pytest.fixture
def live_website(key_client):
    from tenants import services as tenant_services

    tenant, client = key_client
    host = f"www.{uuid.uuid4().hex[:10]}.test"
    website = tenant_services.website_create(tenant=tenant, name="Faulty", hostnames=[host])
    hostnames_verified(host)
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
    from backups import tenant_exports as backup_services
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
