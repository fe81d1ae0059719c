import uuid

import pytest

from tenants.models import Deployment, Tenant

pytestmark = pytest.mark.django_db


def _error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    return body["error"]


def test_tenant_crud_and_suspension(staff_client):
    response = staff_client.post(
        "/api/v1/tenants/", {"name": "Acme", "slug": "acme", "tier": "enterprise"}, format="json"
    )
    assert response.status_code == 201, response.content
    tenant = response.json()
    assert tenant["requests_per_minute"] == 50_000 and tenant["status"] == "active"

    response = staff_client.patch(f"/api/v1/tenants/{tenant['id']}/", {"tier": "free"}, format="json")
    assert response.json()["requests_per_minute"] == 100

    response = staff_client.post(f"/api/v1/tenants/{tenant['id']}/suspend/", {"reason": "abuse"}, format="json")
    assert response.json()["status"] == "suspended"
    _error(
        staff_client.post(f"/api/v1/tenants/{tenant['id']}/suspend/", {"reason": "x"}, format="json"),
        409,
        "invalid_state",
    )
    assert staff_client.post(f"/api/v1/tenants/{tenant['id']}/reactivate/").json()["status"] == "active"


def test_bad_input_gets_400_with_fields(staff_client):
    error = _error(
        staff_client.post("/api/v1/tenants/", {"name": "", "slug": "no spaces", "tier": "gold"}, format="json"),
        400,
        "invalid",
    )
    assert set(error["fields"]) == {"name", "slug", "tier"}
    error = _error(
        staff_client.post("/api/v1/tenants/", "{not json", content_type="application/json"), 400, "malformed_request"
    )
    assert Tenant.objects.count() == 0


def test_duplicate_slug_and_hostname_get_409(staff_client, tenant, website):
    _error(staff_client.post("/api/v1/tenants/", {"name": "A", "slug": "tenant-a"}, format="json"), 409, "conflict")
    other = staff_client.post("/api/v1/tenants/", {"name": "B", "slug": "b"}, format="json").json()
    error = _error(
        staff_client.post(
            "/api/v1/websites/", {"tenant": other["id"], "name": "B", "hostnames": ["WWW.A.TEST"]}, format="json"
        ),
        409,
        "conflict",
    )
    assert "hostnames" in error["fields"]


def test_404_and_405(staff_client, website):
    _error(staff_client.get(f"/api/v1/websites/{uuid.uuid4()}/"), 404, "not_found")
    _error(staff_client.get("/api/v1/websites/not-a-uuid/"), 404, "not_found")
    _error(staff_client.get("/api/v1/nothing-here/"), 404, "not_found")
    _error(staff_client.put(f"/api/v1/websites/{website.pk}/", {}, format="json"), 405, "method_not_allowed")
    _error(staff_client.delete(f"/api/v1/tenants/{website.tenant_id}/"), 405, "method_not_allowed")


def test_anonymous_and_non_staff_refused(client, django_user_model):
    # A Bearer scheme exists now, so missing credentials get 401 with WWW-Authenticate.
    _error(client.get("/api/v1/tenants/"), 401, "not_authenticated")
    user = django_user_model.objects.create_user(username="tenant-dev", password="x-very-long-pass")
    client.force_login(user)
    _error(client.get("/api/v1/websites/"), 403, "permission_denied")


def test_website_lifecycle_and_deployments(staff_client, tenant, celery_worker):
    from tests.helpers import wait_for

    response = staff_client.post(
        "/api/v1/websites/", {"tenant": str(tenant.pk), "name": "Shop", "hostnames": ["shop.a.test"]}, format="json"
    )
    assert response.status_code == 201, response.content
    website = response.json()
    assert website["hostnames"] == ["shop.a.test"] and website["active_deployment"] is None

    response = staff_client.patch(
        f"/api/v1/websites/{website['id']}/", {"hostnames": ["shop.a.test", "a.test"]}, format="json"
    )
    assert response.json()["hostnames"] == ["a.test", "shop.a.test"]

    from tests.sitebundles import bundle_build, upload_file

    bundle = upload_file(bundle_build({"index.html": "v1"}))
    response = staff_client.post(
        f"/api/v1/websites/{website['id']}/deployments/", {"description": "v1", "bundle": bundle}, format="multipart"
    )
    assert response.status_code == 201, response.content
    deployment = response.json()
    assert deployment["number"] == 1 and deployment["status"] == "pending"

    response = staff_client.get(f"/api/v1/websites/{website['id']}/deployments/")
    assert response.json()["count"] == 1
    assert staff_client.get(f"/api/v1/deployments/{deployment['id']}/").json()["website"] == website["id"]

    assert staff_client.delete(f"/api/v1/websites/{website['id']}/").status_code == 204
    _error(staff_client.get(f"/api/v1/websites/{website['id']}/"), 404, "not_found")
    assert not Deployment.objects.filter(pk=deployment["id"]).exists()
    assert wait_for  # the worker may still receive the task; it skips deployments that are gone


def test_lists_paginate_and_filter(staff_client):
    for index in range(5):
        staff_client.post(
            "/api/v1/tenants/",
            {"name": f"T{index}", "slug": f"t{index}", "tier": "free" if index % 2 else "starter"},
            format="json",
        )
    page = staff_client.get("/api/v1/tenants/?page_size=2").json()
    assert page["count"] == 5 and len(page["results"]) == 2 and page["next"]
    assert staff_client.get("/api/v1/tenants/?tier=free").json()["count"] == 2
    assert staff_client.get("/api/v1/tenants/?search=T3").json()["count"] == 1
    _error(staff_client.get("/api/v1/tenants/?tier=gold"), 400, "invalid")
