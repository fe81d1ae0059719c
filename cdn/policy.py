"""The cache strategy, in one place: which Cache-Control and Content-Type each response gets.

Every producer of cacheable bytes asks here: the deployment pipeline (object metadata in S3), the
origin (response headers), the API (no-store). A website may override a class, e.g.
``{"html": "public, max-age=60"}`` in its CDN settings.
"""

import mimetypes
import re
from enum import StrEnum


class ContentClass(StrEnum):
    VERSIONED = "versioned"  # a file whose name carries its content hash: never changes
    HTML = "html"
    MEDIA = "media"
    API = "api"
    OTHER = "other"


CACHE_CONTROL = {
    ContentClass.VERSIONED: "public, max-age=31536000, immutable",
    # Browsers revalidate every time (a cheap 304 against the ETag), so a purge reaches them at once;
    # the CDN keeps it an hour (s-maxage) and is purged by every deploy that changes it.
    ContentClass.HTML: "public, max-age=0, s-maxage=3600, must-revalidate",
    ContentClass.MEDIA: "public, max-age=2592000",
    ContentClass.API: "no-store",
    # Unversioned CSS/JS/JSON/text: treated like HTML, since they may change with any deploy.
    ContentClass.OTHER: "public, max-age=3600",
}

# A hash segment in a file name: app.3f2a9c1b.js, main-0123abcd4567.css (Django's manifest
# storage uses 12 hex digits, webpack/vite 8+). At least one digit, so "-deadbeef." words don't count.
_VERSIONED_NAME = re.compile(r"[.-](?=[0-9a-f]*[0-9])[0-9a-f]{8,64}\.[A-Za-z0-9]+$")
_MEDIA_TYPES = ("image/", "video/", "audio/", "font/")
_MEDIA_EXTENSIONS = {".woff", ".woff2", ".ttf", ".otf", ".eot", ".ico", ".pdf", ".webp", ".avif"}
_HTML_TYPES = ("text/html", "application/xhtml+xml")

# Types Python's table lacks or gets wrong on minimal systems.
_EXTRA_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".wasm": "application/wasm",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".map": "application/json",
    ".txt": "text/plain",
    ".xml": "application/xml",
}
_TEXT_CHARSET = ("text/", "application/javascript", "application/json", "application/xml", "image/svg+xml")


# A compressed file (sitemap.xml.gz, data.json.br) is served as what it is, an archive: a
# Content-Encoding would make browsers unpack a download the site meant to offer as a file.
_COMPRESSED_TYPES = {
    ".gz": "application/gzip",
    ".tgz": "application/gzip",
    ".br": "application/x-brotli",
    ".bz2": "application/x-bzip2",
    ".xz": "application/x-xz",
    ".zst": "application/zstd",
    ".z": "application/x-compress",
}


def content_type_for(path: str) -> str:
    """The Content-Type of a file by its name, with a charset for text."""
    lower = path.lower()
    extension = lower[lower.rfind(".") :] if "." in lower.rsplit("/", 1)[-1] else ""
    content_type = (
        _COMPRESSED_TYPES.get(extension)
        or _EXTRA_TYPES.get(extension)
        or mimetypes.guess_type(lower, strict=False)[0]
        or "application/octet-stream"
    )
    if content_type.startswith(_TEXT_CHARSET) and "charset" not in content_type:
        content_type += "; charset=utf-8"
    return content_type


def classify(path: str, content_type: str | None = None) -> ContentClass:
    if path.startswith("/api/"):
        return ContentClass.API
    content_type = content_type or content_type_for(path)
    if content_type.startswith(_HTML_TYPES):
        return ContentClass.HTML
    if _VERSIONED_NAME.search(path.rsplit("/", 1)[-1]):
        return ContentClass.VERSIONED
    lower = path.lower()
    if content_type.startswith(_MEDIA_TYPES) or any(lower.endswith(ext) for ext in _MEDIA_EXTENSIONS):
        return ContentClass.MEDIA
    return ContentClass.OTHER


def cache_control_for(path: str, *, content_type: str | None = None, overrides: dict | None = None) -> str:
    """Cache-Control for a path; a website's overrides (by class name) win over the defaults."""
    content_class = classify(path, content_type)
    if overrides and overrides.get(content_class.value):
        return overrides[content_class.value]
    return CACHE_CONTROL[content_class]


def validate_overrides(overrides: dict) -> dict:
    """Check a website's overrides; raise ValueError naming the bad key."""
    if not isinstance(overrides, dict):
        raise ValueError("cache overrides must be an object of class name to Cache-Control value")
    for key, value in overrides.items():
        if key not in ContentClass._value2member_map_:
            raise ValueError(f"unknown content class {key!r} (one of {', '.join(c.value for c in ContentClass)})")
        if not isinstance(value, str) or not value.strip() or "\n" in value or "\r" in value:
            raise ValueError(f"cache override for {key!r} must be a one-line Cache-Control value")
    return overrides


class ApiNoStoreMiddleware:
    """API responses are per-client and must never be stored by a shared cache."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith("/api/") and not response.has_header("Cache-Control"):
            response["Cache-Control"] = CACHE_CONTROL[ContentClass.API]
        return response
