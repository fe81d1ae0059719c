"""Tenant content never runs on the platform's origin, and never gets the platform's cookies or session.

(The browser's view of the same boundary: tests/e2e/test_tenant_boundary.py.)
"""

import pytest
from django.test import Client

from tenants import services
from tenants.hostnames import preview_host
from tests.sitebundles import bundle_build

pytestmark = pytest.mark.django_db

ATTACK = b"<script>fetch('/api/v1/tenants/')</script>"


@pytest.fixture
def live_site(website):
    deployment = services.deployment_create(
        website=website, bundle=bundle_build({"index.html": ATTACK, "about/index.html": "about"}), run=False
    )
    assert services.deployment_execute(deployment=deployment).status == "succeeded"
    return website


@pytest.fixture
def operator_client(django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "root-pass-Boundary-1")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/admin/")  # the CSRF cookie, as a browser that opened the admin holds it
    return client


def test_the_platform_host_serves_no_tenant_bytes_only_a_redirect_to_the_preview_host(live_site, settings):
    """The review's reproduction: /sites/<id>/ served a tenant's script on the admin's origin."""
    response = Client().get(f"/sites/{live_site.pk}/about/?lang=fr")
    assert response.status_code == 302 and ATTACK not in response.content
    assert response["Location"] == f"http://{live_site.pk}.{settings.SITES_PREVIEW_DOMAIN}/about/?lang=fr"
    assert response["Cache-Control"] == "no-store"
    # The port the platform was reached on is kept (./bin/run serves both on 127.0.0.1:8000).
    response = Client().get(f"/sites/{live_site.pk}", HTTP_HOST="127.0.0.1:8000")
    assert response["Location"] == f"http://{live_site.pk}.{settings.SITES_PREVIEW_DOMAIN}:8000/"
    for path in (f"/sites/{live_site.pk}/", f"/sites/{live_site.pk}/index.html", "/", "/index.html"):
        assert ATTACK not in Client().get(path, follow=False).content, path
    # ... and the preview host serves the site at its root.
    page = Client().get("/", HTTP_HOST=preview_host(live_site.pk))
    assert (page.status_code, page.content) == (200, ATTACK)


def test_tenant_hosts_are_answered_without_the_platforms_cookies_session_or_views(live_site, operator_client, tenant):
    """An operator's browser that also holds cookies for a tenant host (or a tenant that names its own
    cookies like ours) gets no session there, no cookie set, and none of the platform's routes."""
    cookies = "; ".join(f"{morsel.key}={morsel.value}" for morsel in operator_client.cookies.values())
    assert "sessionid=" in cookies and "csrftoken=" in cookies
    token = operator_client.cookies["csrftoken"].value
    for host in (preview_host(live_site.pk), "www.a.test"):
        page = Client().get("/", HTTP_HOST=host, HTTP_COOKIE=cookies)
        assert page.status_code == 200 and page.content == ATTACK
        assert not page.cookies and "Set-Cookie" not in page and "Cookie" not in page.get("Vary", "")
        for header in ("Content-Security-Policy", "X-Frame-Options", "Cross-Origin-Opener-Policy"):
            assert header not in page, header  # the tenant's site, the tenant's policy
        # The platform's routes do not exist there, with or without the operator's cookies and token.
        suspend = Client().post(
            f"/api/v1/tenants/{tenant.pk}/suspend/", {"reason": "x"}, content_type="application/json",
            HTTP_HOST=host, HTTP_COOKIE=cookies, HTTP_X_CSRFTOKEN=token,
        )  # fmt: skip
        assert suspend.status_code == 405 and b"suspended" not in suspend.content
        assert Client().get("/admin/", HTTP_HOST=host, HTTP_COOKIE=cookies).status_code == 404
    tenant.refresh_from_db()
    assert tenant.status == "active"


def test_unverified_and_unknown_hosts_are_refused_alike(tenant):
    services.website_create(tenant=tenant, name="Pending", hostnames=["pending.test"])
    pending, unknown = Client().get("/", HTTP_HOST="pending.test"), Client().get("/", HTTP_HOST="nobody.test")
    assert pending.status_code == unknown.status_code == 400
    assert pending.content == unknown.content  # a claim does not even tell that it exists
    # A preview host must be the canonical form of an existing website's id.
    for host in ("not-a-uuid.sites.localhost", "00000000-0000-0000-0000-000000000000.sites.localhost"):
        response = Client().get("/", HTTP_HOST=host)
        assert response.status_code in (400, 404) and not response.cookies


def test_preview_hosts_are_recognised_only_in_their_canonical_form(website, settings):
    from tenants.hostnames import website_id_from_preview_host

    domain = settings.SITES_PREVIEW_DOMAIN
    assert website_id_from_preview_host(f"{website.pk}.{domain}") == website.pk
    for host in (
        f"{str(website.pk).replace('-', '')}.{domain}", f"{{{website.pk}}}.{domain}", f"x.{website.pk}.{domain}",
        f"{website.pk}.{domain}.evil.test", f"{website.pk}.x{domain}", domain,
    ):  # fmt: skip
        assert website_id_from_preview_host(host) is None, host


def test_platform_cookies_are_host_only(live_site, django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.com", "root-pass-Boundary-1")
    client = Client()
    login = client.get("/admin/login/")
    token = login.cookies["csrftoken"].value
    response = client.post(
        "/admin/login/", {"username": "root", "password": "root-pass-Boundary-1", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    for name in ("sessionid", "csrftoken"):
        morsel = client.cookies[name]
        assert morsel["domain"] == "" and morsel["path"] == "/", (name, morsel.OutputString())
        assert morsel["samesite"] == "Lax"
    assert client.cookies["sessionid"]["httponly"]


def test_a_cookie_domain_or_an_overlapping_preview_domain_is_refused_by_the_system_checks(settings):
    from tenants.checks import check_tenant_hosts

    assert check_tenant_hosts(None) == []
    settings.SESSION_COOKIE_DOMAIN = ".localhost"
    assert [error.id for error in check_tenant_hosts(None)] == ["tenants.E005"]
    settings.SESSION_COOKIE_DOMAIN = None
    settings.PLATFORM_HOST, settings.SITES_PREVIEW_DOMAIN = "platform.example.com", "sites.platform.example.com"
    settings.ALLOWED_HOSTS = ["platform.example.com"]
    assert [error.id for error in check_tenant_hosts(None)] == ["tenants.E002"]
    settings.SITES_PREVIEW_DOMAIN = "usercontent.example.com"
    assert [error.id for error in check_tenant_hosts(None)] == ["tenants.W001"]
    settings.SITES_PREVIEW_DOMAIN = "sites.example.net"
    settings.ALLOWED_HOSTS = ["platform.example.com", ".example.net"]
    assert [error.id for error in check_tenant_hosts(None)] == ["tenants.E003"]
    settings.ALLOWED_HOSTS = ["other.example.com"]
    settings.HOSTNAME_DNS_RESOLVERS = ["dns.example.com"]
    assert [error.id for error in check_tenant_hosts(None)] == ["tenants.E004", "tenants.E006"]
