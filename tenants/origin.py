"""The origin: serves a website's active deployment on the website's own hosts, never on the platform's.

A website is served on `<website id>.SITES_PREVIEW_DOMAIN` (its preview host) and on its verified
hostnames (tenants/verification.py), and nowhere else. The platform host (PLATFORM_HOST: admin, API,
console) never serves tenant bytes: `/sites/<website>/...` there only redirects to the preview host, so
a tenant's script never runs on the origin that holds the operators' session.

Host-based serving and ALLOWED_HOSTS: tenant hostnames are data, not settings, so they cannot be in
ALLOWED_HOSTS. WebsiteHostMiddleware runs first (before SecurityMiddleware and CommonMiddleware,
which validate the Host, and before the session, CSRF, authentication and CSP middleware) and answers a
request itself when its Host is a preview host (recognised by its form) or exactly a verified hostname
(a database match, so an arbitrary Host is never trusted). Such a request is answered without its
cookies and without any of the platform's middleware: no session, no platform cookie, no platform
header. Every other request (platform hosts in ALLOWED_HOSTS, unknown or unverified hosts) goes on
unchanged to Django's host validation; a platform host skips the lookup entirely, so the API pays
nothing for this.

Responses carry the cache strategy's Cache-Control (cdn.policy, with the website's overrides), a
strong ETag from the file's SHA-256, and honour If-None-Match with 304, so a CDN revalidates cheaply.
"""

import threading
from collections import OrderedDict

from django.conf import settings
from django.http import HttpResponse, HttpResponseNotAllowed, HttpResponsePermanentRedirect, HttpResponseRedirect
from django.http.request import split_domain_port, validate_host
from django.urls import path as url_path
from django.utils.cache import get_conditional_response

from cdn import compression
from cdn.policy import cache_control_for
from core.objectstore import ObjectNotFound, ObjectStorageError, object_store

from .access import tenant_is_active
from .hostnames import preview_host, website_id_from_preview_host
from .models import Deployment, Hostname, Website
from .usage import origin_served

MAX_CACHED_OBJECT_BYTES = 256 * 1024


class _ImmutableCache:
    """Bounded LRU of immutable things (manifests, object bodies) keyed by ids that never change."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.size = 0
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key][0]
        return None

    def put(self, key, value, size: int) -> None:
        with self.lock:
            if key in self.items:
                return
            self.items[key] = (value, size)
            self.size += size
            while self.size > self.max_bytes and self.items:
                _, (_, evicted) = self.items.popitem(last=False)
                self.size -= evicted


_manifests = _ImmutableCache(max_bytes=64 * 1024 * 1024)
_bodies = _ImmutableCache(max_bytes=64 * 1024 * 1024)


def _deployment_files(deployment_id) -> tuple[str, dict] | None:
    """(storage prefix, manifest) of a deployment; both immutable once it succeeded."""
    cached = _manifests.get(deployment_id)
    if cached is None:
        row = Deployment.objects.filter(pk=deployment_id).values_list("storage_prefix", "manifest").first()
        if row is None:
            return None
        cached = row
        _manifests.put(deployment_id, cached, size=64 * (len(row[1]) + 1))
    return cached


def _resolve(manifest: dict, path: str) -> tuple[str | None, str | None]:
    """(file path, redirect-to) for a URL path inside a site."""
    relative = path.lstrip("/")
    if relative == "" or relative.endswith("/"):
        candidate = relative + "index.html"
        return (candidate, None) if candidate in manifest else (None, None)
    if relative in manifest:
        return relative, None
    if f"{relative}/index.html" in manifest:
        return None, "/" + relative + "/"
    return None, None


def _read(prefix: str, file_path: str, entry: dict, *, encoding: str | None = None) -> bytes:
    key = prefix + file_path
    cache_key = key if encoding is None else (key, encoding)
    body = _bodies.get(cache_key)
    if body is None:
        body = _bodies.get(key) if encoding else None
        if body is None:
            body = object_store().get(key).body
        if encoding:  # compressed once per process and encoding; the CDN in front keeps it too
            body = compression.compress(body, encoding)
        if len(body) <= MAX_CACHED_OBJECT_BYTES:
            _bodies.put(cache_key, body, size=len(body))
    return body


def serve_website(request, website: dict, path: str, *, url_prefix: str = "") -> HttpResponse:
    """Serve path from a website's active deployment (website: id, status, tenant_id, active_deployment_id,
    cache_overrides)."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    if (
        website["status"] != Website.Status.ACTIVE
        or not website["active_deployment_id"]
        or not tenant_is_active(website["tenant_id"])
    ):
        return _not_found()
    files = _deployment_files(website["active_deployment_id"])
    if files is None:
        return _not_found()
    prefix, manifest = files
    file_path, redirect = _resolve(manifest, path)
    if redirect:
        return HttpResponsePermanentRedirect(url_prefix + redirect)
    status = 200
    if file_path is None:
        if "404.html" not in manifest:
            return _not_found()
        file_path, status = "404.html", 404
    entry = manifest[file_path]
    # --- compressed delivery (cdn/compression.py): br/gzip for text types, its own ETag, Vary ---
    compressible = compression.is_compressible(entry["content_type"]) and entry["size"] >= compression.MIN_BYTES
    encoding = compression.negotiate(request.headers.get("Accept-Encoding", ""), entry["content_type"])
    encoding = encoding if compressible else None
    etag = compression.variant_etag(f'"{entry["sha256"][:40]}"', encoding)
    vary = {"Vary": "Accept-Encoding"} if compression.is_compressible(entry["content_type"]) else {}
    # --- end compressed delivery ---
    cache_control = cache_control_for("/" + file_path, content_type=entry["content_type"],
                                      overrides=website["cache_overrides"])  # fmt: skip
    if status == 200:
        not_modified = get_conditional_response(request, etag=etag)
        if not_modified is not None:
            # RFC 9110: a 304 carries the validator and caching headers a 200 would have.
            not_modified["ETag"] = etag
            not_modified["Cache-Control"] = cache_control
            for name, value in vary.items():
                not_modified[name] = value
            origin_served(tenant_id=website["tenant_id"], nbytes=0)
            return not_modified
    try:
        body = _read(prefix, file_path, entry, encoding=encoding)
    except ObjectNotFound:
        return _not_found()
    except ObjectStorageError:
        return HttpResponse(
            "Storage unavailable.\n", status=503, content_type="text/plain", headers={"Retry-After": "5"}
        )
    response = HttpResponse(b"" if request.method == "HEAD" else body, status=status,
                            content_type=entry["content_type"], headers=vary)  # fmt: skip
    origin_served(tenant_id=website["tenant_id"], nbytes=len(response.content))
    if encoding:
        response["Content-Encoding"] = encoding
    response["Content-Length"] = str(len(body))
    response["ETag"] = etag
    response["Cache-Control"] = cache_control
    response["X-Deployment-Id"] = str(website["active_deployment_id"])
    return response


def _not_found() -> HttpResponse:
    # Short-lived: a site deployed a moment later must show up without a purge.
    return HttpResponse(
        "Not found.\n",
        status=404,
        content_type="text/plain; charset=utf-8",
        headers={"Cache-Control": "public, max-age=60"},
    )


_WEBSITE_FIELDS = ("id", "status", "tenant_id", "active_deployment_id", "cache_overrides")


def website_for_host(hostname: str) -> dict | None:
    """The website a verified hostname (lower-case, no port, no trailing dot) belongs to."""
    return (
        Website.objects.filter(hostnames__hostname=hostname, hostnames__status=Hostname.Status.VERIFIED)
        .values(*_WEBSITE_FIELDS)
        .first()
    )


class WebsiteHostMiddleware:
    """Answers requests for a website's hosts; see the module docstring."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        hostname, _port = split_domain_port(request.META.get("HTTP_HOST", ""))
        hostname = hostname.rstrip(".")
        website_id = website_id_from_preview_host(hostname) if hostname else None
        if website_id is not None:
            request.website_host = True
            _forget_cookies(request)
            website = Website.objects.filter(pk=website_id).values(*_WEBSITE_FIELDS).first()
            if website is None:  # a well-formed preview host of no website
                return _not_found()
            return serve_website(request, website, request.path_info)
        if hostname and not validate_host(hostname, settings.ALLOWED_HOSTS):
            # Not a platform host: a website's, or refused by Django's host validation below.
            _forget_cookies(request)
            website = website_for_host(hostname)
            if website is not None:
                request.website_host = True
                return serve_website(request, website, request.path_info)
        return self.get_response(request)


def _forget_cookies(request) -> None:
    """A tenant's visitors' cookies are the tenant's business: never an identity on the platform (the
    routing context, a session) for a request that is not the platform's."""
    request.META.pop("HTTP_COOKIE", None)
    request.__dict__.pop("COOKIES", None)


def site_redirect(request, website_id, path: str = ""):
    """/sites/<website>/<path> on the platform host: the same page on the website's preview host.
    Temporary and never cached: where previews live is configuration (SITES_PREVIEW_DOMAIN)."""
    _hostname, port = split_domain_port(request.get_host())
    netloc = preview_host(website_id) + (f":{port}" if port else "")
    query = request.META.get("QUERY_STRING", "")
    location = f"{request.scheme}://{netloc}/{path}" + (f"?{query}" if query else "")
    response = HttpResponseRedirect(location)
    response["Cache-Control"] = "no-store"
    return response


urlpatterns = [
    url_path("<uuid:website_id>", site_redirect),
    url_path("<uuid:website_id>/", site_redirect),
    url_path("<uuid:website_id>/<path:path>", site_redirect),
]
