"""Coalescing through a real worker; the API, the admin action and the command."""

import socket

import pytest
from django.core.management import CommandError, call_command

from cdn import provider_requests, services
from cdn.backends.dummy import DummyBackend
from cdn.models import Invalidation, ProviderRequest
from tests.helpers import wait_for


@pytest.mark.django_db(transaction=True)
def test_requests_within_the_window_coalesce_into_one_provider_request(website, celery_worker, settings):
    # The worker reads its own settings: default dummy backend, 2 s window.
    first = services.invalidation_request(website=website, paths=["/a.html"])
    second = services.invalidation_request(website=website, paths=["/b.html", "/a.html"])
    assert first.pk != second.pk and second.paths == ["/b.html", "/a.html"]  # each caller keeps its record

    def completed():
        rows = list(Invalidation.objects.filter(pk__in=[first.pk, second.pk]))
        return rows if {row.status for row in rows} == {Invalidation.Status.COMPLETED} else None

    wait_for(completed, timeout=30)
    [request] = ProviderRequest.objects.filter(website=website)  # one provider request carried both
    assert request.provider_id.startswith("dummy-") and sorted(request.paths) == ["/a.html", "/b.html"]
    assert set(request.invalidations.values_list("pk", flat=True)) == {first.pk, second.pk}


@pytest.mark.django_db
def test_api_requests_and_lists_invalidations(staff_client, website):
    url = f"/api/v1/websites/{website.pk}/invalidations/"
    response = staff_client.post(url, {"paths": ["/about/", "/blog/*"]}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["paths"] == ["/about/", "/blog/*"] and body["status"] == "pending" and body["backend"] == "default"
    response = staff_client.post(url, {}, format="json")  # the whole site
    assert response.status_code == 202 and response.json()["paths"] == ["/*"]
    whole_site = response.json()["id"]
    listing = staff_client.get(url).json()
    assert listing["count"] == 2 and {row["id"] for row in listing["results"]} == {body["id"], whole_site}

    response = staff_client.post(url, {"paths": ["no-slash", "/ok"]}, format="json")
    error = response.json()["error"]
    assert response.status_code == 400 and "must start with '/'" in error["fields"]["paths"][0]
    response = staff_client.post(url, {"paths": "/not-a-list"}, format="json")
    assert response.status_code == 400 and "paths" in response.json()["error"]["fields"]
    assert staff_client.post(f"/api/v1/websites/{'0' * 8}-0000-0000-0000-{'0' * 12}/invalidations/", {},
                             format="json").status_code == 404  # fmt: skip


@pytest.mark.django_db
def test_unconfigured_backend_is_a_clear_error(staff_client, website):
    website.cdn_backend = "nowhere"
    website.save(update_fields=["cdn_backend"])
    response = staff_client.post(f"/api/v1/websites/{website.pk}/invalidations/", {"paths": ["/"]}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "cdn_not_configured"


@pytest.mark.django_db
def test_command_invalidates_now(website, capsys):
    call_command("cdn", "invalidate", "www.a.test", "/x.html", "/y/*", "--now")
    output = capsys.readouterr().out
    assert "completed" in output
    assert DummyBackend.calls == [(str(website.pk), ("www.a.test",), ["/x.html", "/y/*"])]
    with pytest.raises(CommandError, match="must start with '/'"):
        call_command("cdn", "invalidate", "www.a.test", "nope")
    with pytest.raises(CommandError, match="no website"):
        call_command("cdn", "invalidate", "missing.example.com")


@pytest.mark.django_db
def test_admin_action_with_paths_form(website, admin_client_logged_in, settings):
    client = admin_client_logged_in
    changelist = "/admin/tenants/website/"
    form = client.post(changelist, {"action": "invalidate_cdn_cache", "_selected_action": [website.pk]})
    assert form.status_code == 200 and b"Invalidate CDN cache" in form.content
    bad = client.post(changelist, {"action": "invalidate_cdn_cache", "_selected_action": [website.pk],
                                   "apply": "1", "paths": "relative", "reason": "stale page"})  # fmt: skip
    assert bad.status_code == 200 and b"must start with" in bad.content and not Invalidation.objects.exists()
    done = client.post(changelist, {"action": "invalidate_cdn_cache", "_selected_action": [website.pk],
                                    "apply": "1", "paths": "/a.html\n/b/*\n", "reason": "stale page"})  # fmt: skip
    assert done.status_code == 302
    assert Invalidation.objects.get().paths == ["/a.html", "/b/*"]
    assert client.get("/admin/cdn/invalidation/").status_code == 200
    rollback = client.post(changelist, {"action": "rollback_selected", "_selected_action": [website.pk],
                                        "apply": "1", "reason": "bad deploy"}, follow=True)  # fmt: skip
    assert b"no active deployment" in rollback.content


@pytest.mark.django_db
def test_website_cdn_settings_through_the_api(staff_client, website):
    url = f"/api/v1/websites/{website.pk}/cdn/"
    assert staff_client.get(url).json() == {"cdn_backend": "default", "cdn_config": {}, "cache_overrides": {}}
    response = staff_client.patch(url, {"cdn_config": {"distribution_id": "E1"},
                                        "cache_overrides": {"html": "public, max-age=60"}}, format="json")  # fmt: skip
    assert response.status_code == 200 and response.json()["cdn_config"] == {"distribution_id": "E1"}
    response = staff_client.patch(url, {"cdn_backend": "nope"}, format="json")
    assert response.status_code == 400 and "cdn_backend" in response.json()["error"]["fields"]
    response = staff_client.patch(url, {"cache_overrides": {"pages": "no-cache"}}, format="json")
    assert (
        response.status_code == 400
        and "unknown content class" in response.json()["error"]["fields"]["cache_overrides"][0]
    )
    website.refresh_from_db()
    assert website.cache_overrides == {"html": "public, max-age=60"}


@pytest.mark.django_db
def test_api_reads_one_invalidation_and_filters_by_status(staff_client, website, tenant):
    from tenants import services as tenant_services

    url = f"/api/v1/websites/{website.pk}/invalidations/"
    done = staff_client.post(url, {"paths": ["/done/"]}, format="json").json()
    provider_requests.invalidation_flush(website_id=website.pk)
    waiting = staff_client.post(url, {"paths": ["/café/", "/docs/Annual Report.pdf"]}, format="json").json()
    assert waiting["paths"] == ["/caf%C3%A9/", "/docs/Annual%20Report.pdf"]

    one = staff_client.get(f"{url}{done['id']}/")
    assert one.status_code == 200 and one.json()["status"] == "completed"
    assert one.json()["requests"][0]["provider_id"].startswith("dummy-")
    assert staff_client.get(f"{url}{waiting['id']}/").json()["status"] == "pending"
    listing = staff_client.get(url, {"status": "pending"}).json()
    assert [row["id"] for row in listing["results"]] == [waiting["id"]]
    assert [row["id"] for row in staff_client.get(url, {"status": "completed"}).json()["results"]] == [done["id"]]
    bad = staff_client.get(url, {"status": "nope"})
    assert bad.status_code == 400 and "status" in bad.json()["error"]["fields"]
    # Another website's invalidation is not found under this one.
    other = tenant_services.website_create(tenant=tenant, name="Other", hostnames=["www.other.test"])
    assert staff_client.get(f"/api/v1/websites/{other.pk}/invalidations/{done['id']}/").status_code == 404
    assert staff_client.get(f"{url}/{'0' * 8}-0000-0000-0000-{'0' * 12}").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/../etc/passwd", "/a/%2e%2e/b", "//evil.test/x", "/a\x00"])
def test_api_refuses_traversal_and_protocol_relative_paths(staff_client, website, path):
    response = staff_client.post(f"/api/v1/websites/{website.pk}/invalidations/", {"paths": ["/ok", path]},
                                 format="json")  # fmt: skip
    assert response.status_code == 400 and response.json()["error"]["fields"]["paths"]
    assert not Invalidation.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "attempts,message,line",
    [(5, r"is still pending; next attempt in \d+ s", ": pending: "), (1, r"invalidation .* failed: ", ": failed: ")],
)
def test_command_now_reports_a_failure_or_a_wait(website, settings, capsys, attempts, message, line):
    """--now says what the provider answered: a failure exits non-zero with its error; a retry says when."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.CDN_BACKENDS = {
        **settings.CDN_BACKENDS,
        "down": {"BACKEND": "cdn.backends.varnish.VarnishBackend",
                 "OPTIONS": {"NODES": [f"http://127.0.0.1:{closed_port}"], "TIMEOUT_SECONDS": 1}},
    }  # fmt: skip
    website.cdn_backend = "down"
    website.save(update_fields=["cdn_backend"])
    settings.CDN_INVALIDATION_MAX_ATTEMPTS = attempts
    # The website named as tenant-slug/name, as every command accepts.
    with pytest.raises(CommandError, match=message):
        call_command("cdn", "invalidate", "tenant-a/Site A", "/a.html", "--now", "--wait", "0")
    assert line in capsys.readouterr().out  # the provider request and its error
