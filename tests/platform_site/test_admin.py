import pytest

from tenants import services
from tenants.models import Hostname, Tenant

pytestmark = pytest.mark.django_db


def test_admin_requires_login(client):
    response = client.get("/admin/tenants/tenant/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_admin_pages_render(admin_client_logged_in, website):
    services.deployment_create(website=website, run=False)
    for url in (
        "/admin/",
        "/admin/tenants/tenant/?tier__exact=starter&q=tenant",
        "/admin/tenants/website/?q=www.a.test",
        "/admin/tenants/deployment/?status__exact=pending",
        f"/admin/tenants/tenant/{website.tenant_id}/change/",
        f"/admin/tenants/website/{website.pk}/change/",
    ):
        response = admin_client_logged_in.get(url)
        assert response.status_code == 200, url
    assert b"www.a.test" in admin_client_logged_in.get("/admin/tenants/website/").content


def test_admin_suspend_action_confirms_then_suspends(admin_client_logged_in, tenant):
    data = {"action": "suspend_selected", "_selected_action": [str(tenant.pk)]}
    confirm = admin_client_logged_in.post("/admin/tenants/tenant/", data)
    assert confirm.status_code == 200 and b"Yes, suspend" in confirm.content
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE
    response = admin_client_logged_in.post(
        "/admin/tenants/tenant/", {**data, "apply": "1", "reason": "unpaid invoices"}, follow=True
    )
    assert response.status_code == 200 and b"1 tenant(s) suspended." in response.content
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.SUSPENDED and tenant.suspension_reason == "unpaid invoices"


def test_admin_refuses_duplicate_hostname_with_a_form_error(admin_client_logged_in, website):
    other = services.website_create(tenant=services.tenant_create(name="B", slug="b"), name="B site")
    data = {
        "tenant": str(other.tenant_id),
        "name": "B site",
        "status": "active",
        "hostnames-TOTAL_FORMS": "1",
        "hostnames-INITIAL_FORMS": "0",
        "hostnames-0-hostname": "WWW.A.TEST",
        "deployments-TOTAL_FORMS": "0",
        "deployments-INITIAL_FORMS": "0",
    }
    response = admin_client_logged_in.post(f"/admin/tenants/website/{other.pk}/change/", data)
    assert response.status_code == 200  # the form again, with the error; no traceback
    assert b"errorlist" in response.content
    assert not Hostname.objects.filter(website=other).exists()


def test_admin_cannot_rename_a_verified_hostname_into_an_unverified_one(admin_client_logged_in, website):
    """A verification proves control of one name: renaming the row would serve another name unverified."""
    hostname = website.hostnames.get()
    data = {
        "tenant": str(website.tenant_id), "name": website.name, "status": "active",
        "hostnames-TOTAL_FORMS": "1", "hostnames-INITIAL_FORMS": "1",
        "hostnames-0-id": str(hostname.pk), "hostnames-0-website": str(website.pk),
        "hostnames-0-hostname": "www.bank.test",
        "deployments-TOTAL_FORMS": "0", "deployments-INITIAL_FORMS": "0",
    }  # fmt: skip
    response = admin_client_logged_in.post(f"/admin/tenants/website/{website.pk}/change/", data)
    assert response.status_code == 200 and b"cannot be renamed" in response.content
    assert list(Hostname.objects.values_list("hostname", "status")) == [("www.a.test", "verified")]
