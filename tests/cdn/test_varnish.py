"""The whole path through a real Varnish (deploy/varnish/default.vcl) in front of the origin."""

import http.client
import uuid
from urllib.parse import urlsplit

import pytest

from cdn import provider_requests
from cdn import services as cdn_services
from cdn.models import Invalidation, ProviderRequest
from tenants import services
from tenants.hostnames import preview_host
from tests.helpers import hostnames_verified
from tests.sitebundles import bundle_build, site_v1, site_v2

pytestmark = pytest.mark.django_db(transaction=True)


def fetch(base_url: str, path: str, host: str, method: str = "GET", headers: dict | None = None):
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request(method, path, headers={"Host": host, **(headers or {})})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.fixture
def cached_site(tenant, settings, varnish_url, origin_server):
    settings.CDN_BACKENDS = {
        "default": {"BACKEND": "cdn.backends.dummy.DummyBackend", "OPTIONS": {}},
        "varnish": {"BACKEND": "cdn.backends.varnish.VarnishBackend", "OPTIONS": {"NODES": [varnish_url]}},
    }
    # A fresh hostname per run: Varnish keeps its cache between test runs.
    host = f"www.{uuid.uuid4().hex[:10]}.test"
    website = services.website_create(tenant=tenant, name="Cached", hostnames=[host])
    hostnames_verified(host)
    website.cdn_backend = "varnish"
    website.save(update_fields=["cdn_backend"])
    return website, host


def deploy(website, files):
    deployment = services.deployment_create(website=website, bundle=bundle_build(files), run=False)
    return services.deployment_execute(deployment=deployment)


def test_miss_hit_deploy_purge_serves_the_new_version(cached_site, varnish_url):
    website, host = cached_site
    deploy(website, site_v1())
    status, headers, body = fetch(varnish_url, "/", host)
    assert (status, headers["X-Cache"], body) == (200, "MISS", b"<h1>home v1</h1>")
    status, headers, body = fetch(varnish_url, "/", host)
    assert (status, headers["X-Cache"], body) == (200, "HIT", b"<h1>home v1</h1>")
    assert headers["Cache-Control"] == "public, max-age=0, s-maxage=3600, must-revalidate" and headers["ETag"]
    # Varnish answers conditional requests from its cache.
    status, _, _ = fetch(varnish_url, "/", host, headers={"If-None-Match": headers["ETag"]})
    assert status == 304

    deploy(website, site_v2())
    status, headers, body = fetch(varnish_url, "/", host)
    assert (headers["X-Cache"], body) == ("HIT", b"<h1>home v1</h1>")  # the cache still holds v1 ...

    sent = provider_requests.invalidation_flush(website_id=website.pk)  # ... until the deploy's purge is sent
    assert [row.status for row in sent] == [Invalidation.Status.COMPLETED]
    assert sent[0].paths == ["/", "/index.html"]
    status, headers, body = fetch(varnish_url, "/", host)
    assert (status, headers["X-Cache"], body) == (200, "MISS", b"<h1>home v2</h1>")
    assert fetch(varnish_url, "/", host)[1]["X-Cache"] == "HIT"


def test_the_preview_host_is_cached_and_purged_too(cached_site, varnish_url):
    website, _host = cached_site
    deploy(website, site_v1())
    preview = preview_host(website.pk)
    assert fetch(varnish_url, "/", preview)[2] == b"<h1>home v1</h1>"
    assert fetch(varnish_url, "/", preview)[1]["X-Cache"] == "HIT"
    deploy(website, site_v2())
    provider_requests.invalidation_flush(website_id=website.pk)
    status, headers, body = fetch(varnish_url, "/", preview)
    assert (status, headers["X-Cache"], body) == (200, "MISS", b"<h1>home v2</h1>")


def test_a_removed_hostname_is_purged_and_no_longer_served(cached_site, varnish_url):
    """The cache would go on serving a hostname the website no longer answers to (for up to a year for
    versioned assets): removing it purges that host's objects."""
    website, host = cached_site
    deploy(website, site_v1())
    for path in ("/", "/assets/app.1a2b3c4d5e.js"):
        fetch(varnish_url, path, host)
        assert fetch(varnish_url, path, host)[1]["X-Cache"] == "HIT"
    services.website_update(website=website, hostnames=[])
    [row] = provider_requests.invalidation_flush(website_id=website.pk)
    assert row.status == Invalidation.Status.COMPLETED and row.hostnames == [host], row.error
    for path in ("/", "/assets/app.1a2b3c4d5e.js"):
        status, headers, _ = fetch(varnish_url, path, host)
        assert (status, headers["X-Cache"]) == (400, "MISS")  # the origin no longer knows the name


def test_wildcard_becomes_a_ban_and_other_hosts_are_untouched(cached_site, varnish_url):
    website, host = cached_site
    deploy(website, {**site_v1(), "blog/a.html": "a", "blog/b.html": "b"})
    for path in ("/blog/a.html", "/blog/b.html", "/about/"):
        fetch(varnish_url, path, host)
        assert fetch(varnish_url, path, host)[1]["X-Cache"] == "HIT"
    cdn_services.invalidation_request(website=website, paths=["/blog/*"])
    [row] = provider_requests.invalidation_flush(website_id=website.pk)
    assert row.status == Invalidation.Status.COMPLETED, row.error
    assert fetch(varnish_url, "/blog/a.html", host)[1]["X-Cache"] == "MISS"
    assert fetch(varnish_url, "/blog/b.html", host)[1]["X-Cache"] == "MISS"
    assert fetch(varnish_url, "/about/", host)[1]["X-Cache"] == "HIT"


def test_api_responses_pass_through_uncached(varnish_url, origin_server):
    for _ in range(2):
        status, headers, _ = fetch(varnish_url, "/api/v1/websites/", "127.0.0.1")
        assert headers["X-Cache"] == "MISS" and status in (401, 403)


def test_ban_without_header_is_refused(varnish_url):
    status, _, _ = fetch(varnish_url, "/", "x.test", method="BAN")
    assert status == 400


def test_varnish_down_the_origin_still_serves(cached_site, varnish_url, origin_server):
    """Fault injection (tests/hardening/README.md): Varnish stopped. The origin serves, new deployments
    too; the purge is recorded failed with its reason, not lost; nothing stale once Varnish is back."""
    from tests.helpers import stack

    website, host = cached_site
    deploy(website, site_v1())
    assert fetch(varnish_url, "/", host)[2] == b"<h1>home v1</h1>"
    provider_requests.invalidation_flush(website_id=website.pk)
    stack("stop", "varnish")
    try:
        with pytest.raises(OSError):
            fetch(varnish_url, "/", host)
        assert fetch(origin_server, "/", host)[:3:2] == (200, b"<h1>home v1</h1>")
        assert deploy(website, site_v2()).status == "succeeded"
        assert fetch(origin_server, "/", host)[2] == b"<h1>home v2</h1>"
        (row,) = provider_requests.invalidation_flush(website_id=website.pk)
        # Recorded with its reason and retried later (not dropped, not failed on the first refusal).
        assert row.status == Invalidation.Status.PENDING and "unreachable" in row.error and row.not_before
    finally:
        stack("start", "varnish")
    assert fetch(varnish_url, "/", host)[2] == b"<h1>home v2</h1>"
    ProviderRequest.objects.filter(pk=row.pk).update(not_before=None)  # its retry is due
    (row,) = provider_requests.invalidation_flush(website_id=website.pk)
    assert row.status == Invalidation.Status.COMPLETED and row.attempts == 2


def test_file_names_with_spaces_and_non_ascii_deploy_are_served_and_purged(cached_site, varnish_url):
    website, host = cached_site
    v1 = {**site_v1(), "docs/Annual Report.pdf": b"%PDF v1", "café/index.html": "<p>café v1</p>",
          "日本/page.html": "<p>v1</p>"}  # fmt: skip
    deploy(website, v1)
    urls = ["/docs/Annual%20Report.pdf", "/caf%C3%A9/", "/%E6%97%A5%E6%9C%AC/page.html"]
    for url in urls:
        assert fetch(varnish_url, url, host)[0] == 200
        assert fetch(varnish_url, url, host)[1]["X-Cache"] == "HIT"
    v2 = {
        **v1,
        "docs/Annual Report.pdf": b"%PDF v2",
        "café/index.html": "<p>café v2</p>",
        "日本/page.html": "<p>v2</p>",
    }
    deploy(website, v2)
    [asked] = Invalidation.objects.filter(website=website)
    assert {"/docs/Annual%20Report.pdf", "/caf%C3%A9/", "/caf%C3%A9", "/%E6%97%A5%E6%9C%AC/page.html"} <= set(
        asked.paths
    )
    [sent] = provider_requests.invalidation_flush(website_id=website.pk)
    assert sent.status == Invalidation.Status.COMPLETED, sent.error
    bodies = [fetch(varnish_url, url, host)[2] for url in urls]
    assert bodies == [b"%PDF v2", "<p>café v2</p>".encode(), b"<p>v2</p>"]


def test_purge_covers_host_spellings_query_variants_and_the_slash_pair(cached_site, varnish_url):
    website, host = cached_site
    deploy(website, site_v1())
    variants = [("/", host), ("/?utm_source=x", host), ("/", f"{host}:80"), ("/", host.upper()), ("/", f"{host}.")]
    for path, spelling in variants:
        assert fetch(varnish_url, path, spelling)[2] == b"<h1>home v1</h1>"
    # One object whatever the spelling: the first request cached it, the others hit it.
    assert all(fetch(varnish_url, path, spelling)[1]["X-Cache"] == "HIT" for path, spelling in variants)
    status, headers, _ = fetch(varnish_url, "/new", host)  # not there yet: a 404 the cache keeps
    assert status == 404 and fetch(varnish_url, "/new", host)[1]["X-Cache"] == "HIT"

    deploy(website, {**site_v2(), "new/index.html": "<h1>new</h1>"})
    provider_requests.invalidation_flush(website_id=website.pk)
    for path, spelling in variants:
        assert fetch(varnish_url, path, spelling)[2] == b"<h1>home v2</h1>", (path, spelling)
    status, headers, _ = fetch(varnish_url, "/new", host)
    assert status == 301 and headers["Location"] == "/new/"
    assert fetch(varnish_url, "/new/", host)[2] == b"<h1>new</h1>"


def test_an_api_purge_of_a_directory_also_purges_its_no_slash_form(cached_site, varnish_url):
    website, host = cached_site
    deploy(website, site_v1())
    for path in ("/about", "/about/"):
        fetch(varnish_url, path, host)
        assert fetch(varnish_url, path, host)[1]["X-Cache"] == "HIT"
    cdn_services.invalidation_request(website=website, paths=["/about/"])
    provider_requests.invalidation_flush(website_id=website.pk)
    assert [fetch(varnish_url, path, host)[1]["X-Cache"] for path in ("/about", "/about/")] == ["MISS", "MISS"]


def test_text_is_delivered_compressed_through_varnish_and_purged_in_every_encoding(cached_site, varnish_url):
    import gzip

    import brotli

    website, host = cached_site
    page = "<html><body>" + "<p>compress me, I am text</p>" * 200 + "</body></html>"
    sitemap = gzip.compress(b"<urlset>" + b"<url/>" * 100 + b"</urlset>")
    deploy(website, {**site_v1(), "index.html": page, "sitemap.xml.gz": sitemap, "big.png": b"\x89PNG" + b"0" * 5000})
    for encoding, decode in (("br", brotli.decompress), ("gzip", gzip.decompress), (None, lambda body: body)):
        headers_in = {"Accept-Encoding": f"{encoding}, deflate"} if encoding else {}
        for round_ in ("MISS", "HIT"):
            status, headers, body = fetch(varnish_url, "/", host, headers=headers_in)
            assert (status, headers["X-Cache"], headers.get("Content-Encoding")) == (200, round_, encoding)
            assert headers["Vary"] == "Accept-Encoding" and decode(body) == page.encode()
            if encoding:
                assert len(body) < len(page) / 5 and headers["ETag"].endswith(f'-{encoding}"')
    # Already compressed: sent as it is, typed as an archive, never compressed again.
    status, headers, body = fetch(varnish_url, "/sitemap.xml.gz", host, headers={"Accept-Encoding": "br, gzip"})
    assert (headers["Content-Type"], headers.get("Content-Encoding"), body) == ("application/gzip", None, sitemap)
    _, headers, _ = fetch(varnish_url, "/big.png", host, headers={"Accept-Encoding": "br, gzip"})
    assert "Content-Encoding" not in headers and "Vary" not in headers
    # A purge drops the page in every encoding.
    cdn_services.invalidation_request(website=website, paths=["/"])
    provider_requests.invalidation_flush(website_id=website.pk)
    for encoding in ("br", "gzip", "identity"):
        assert fetch(varnish_url, "/", host, headers={"Accept-Encoding": encoding})[1]["X-Cache"] == "MISS"
