"""The Cloudflare backend against a local server following the documented purge_cache contract."""

import logging

import pytest

from cdn import provider_requests, services
from cdn.backends import cdn_backends
from cdn.backends.base import CdnConfigurationError
from cdn.models import Invalidation
from tenants import services as tenant_services
from tests.cdn.cloudflare_fake import FakeCloudflare
from tests.helpers import hostnames_verified

pytestmark = pytest.mark.django_db

TOKEN = "cf-secret-token-123456"
ZONE = "023e105f4ecef8ad9ca31a8372d0c353"


@pytest.fixture
def cloudflare():
    with FakeCloudflare(token=TOKEN, zone_id=ZONE, max_operations=30) as fake:
        yield fake


def _configure(settings, url, token=TOKEN):
    settings.CDN_BACKENDS = {
        "default": {"BACKEND": "cdn.backends.dummy.DummyBackend", "OPTIONS": {}},
        "cloudflare": {
            "BACKEND": "cdn.backends.cloudflare.CloudflareBackend",
            "OPTIONS": {"API_TOKEN": token, "API_URL": url, "MAX_FILES_PER_REQUEST": 30, "REQUESTS_PER_SECOND": 50},
        },
    }


@pytest.fixture
def cf_site(tenant, settings, cloudflare):
    _configure(settings, cloudflare.url)
    website = tenant_services.website_create(tenant=tenant, name="Flare", hostnames=["flare.test", "www.flare.test"])
    hostnames_verified("flare.test", "www.flare.test")  # Cloudflare purges the hostnames the site is served on
    website.cdn_backend, website.cdn_config = "cloudflare", {"zone_id": ZONE}
    website.save(update_fields=["cdn_backend", "cdn_config"])
    return website


def test_files_are_purged_as_urls_for_every_hostname_in_allowed_chunks(cf_site, cloudflare, caplog):
    caplog.set_level(logging.DEBUG)
    paths = [f"/page-{i}.html" for i in range(40)]
    services.invalidation_request(website=cf_site, paths=paths)
    [row] = provider_requests.invalidation_flush(website_id=cf_site.pk)
    assert row.status == Invalidation.Status.COMPLETED, row.error
    files = [url for body in cloudflare.purges for url in body["files"]]
    assert all(len(body["files"]) <= 30 for body in cloudflare.purges) and len(cloudflare.purges) == 3
    assert sorted(files) == sorted(
        f"https://{host}{path}" for host in ("flare.test", "www.flare.test") for path in paths
    )
    assert cloudflare.rejections == []
    assert TOKEN not in caplog.text  # the API token never reaches the logs


def test_wildcards_become_prefixes_and_the_whole_site_becomes_hosts(cf_site, cloudflare):
    services.invalidation_request(website=cf_site, paths=["/blog/*", "/index.html"])
    provider_requests.invalidation_flush(website_id=cf_site.pk)
    assert {"prefixes": ["flare.test/blog/", "www.flare.test/blog/"]} in cloudflare.purges
    services.invalidation_request(website=cf_site, paths=[])
    provider_requests.invalidation_flush(website_id=cf_site.pk)
    assert cloudflare.purges[-1] == {"hosts": ["flare.test", "www.flare.test"]}


def test_rate_limit_is_honoured_through_retry_after(cf_site, cloudflare):
    cloudflare.throttle_next = 1
    services.invalidation_request(website=cf_site, paths=["/a.html"])
    [row] = provider_requests.invalidation_flush(website_id=cf_site.pk)
    assert row.status == Invalidation.Status.COMPLETED
    assert [status for status, _ in cloudflare.rejections] == [429] and len(cloudflare.purges) == 1


def test_provider_errors_fail_the_record_with_cloudflares_message(tenant, settings, cloudflare, cf_site, caplog):
    _configure(settings, cloudflare.url, token="wrong-token-value")
    services.invalidation_request(website=cf_site, paths=["/a.html"])
    [row] = provider_requests.invalidation_flush(website_id=cf_site.pk)
    assert row.status == Invalidation.Status.FAILED
    assert "10000: Authentication error" in row.error and "HTTP 403" in row.error
    assert "wrong-token-value" not in caplog.text and "wrong-token-value" not in row.error


def test_configuration_errors_are_clear(settings):
    settings.CDN_BACKENDS = {"cf": {"BACKEND": "cdn.backends.cloudflare.CloudflareBackend", "OPTIONS": {}}}
    with pytest.raises(CdnConfigurationError, match="API_TOKEN"):
        cdn_backends["cf"]
    settings.CDN_BACKENDS = {"x": {"BACKEND": "cdn.backends.nope.Nope"}}
    with pytest.raises(CdnConfigurationError, match="cannot import"):
        cdn_backends["x"]
    with pytest.raises(CdnConfigurationError, match="not configured"):
        cdn_backends["missing"]
    settings.CDN_BACKENDS = {"d": {"BACKEND": "cdn.backends.dummy.DummyBackend", "OPTIONS": {"TYPO": 1}}}
    with pytest.raises(CdnConfigurationError, match="unknown option"):
        cdn_backends["d"]


def test_without_prefix_purge_wildcards_purge_the_hostnames(cf_site, cloudflare, settings):
    settings.CDN_BACKENDS["cloudflare"]["OPTIONS"]["PURGE_PREFIXES"] = False
    from cdn.backends import cdn_backends

    cdn_backends.reset()
    paths = [f"/blog/{i}.html" for i in range(150)]  # would collapse to /blog/* with prefixes
    services.invalidation_request(website=cf_site, paths=[*paths, "/docs/*"])
    provider_requests.invalidation_flush(website_id=cf_site.pk)
    assert cloudflare.purges == [{"hosts": ["flare.test", "www.flare.test"]}]
