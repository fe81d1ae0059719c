"""The one canonical form of a site path, used by deploys, the API and every CDN backend.

A URL path is kept as browsers send it: UTF-8, percent-encoded once. Characters outside the WHATWG
path set (controls, space, `"#<>?` `` ` `` `{}`, non-ASCII) are encoded; an existing `%XX` escape is kept
(hex in upper case) and an escape of an unreserved character is decoded (RFC 3986 6.2.2), so `/café/`,
`/caf%C3%A9/` and `/caf%c3%a9/` are one path: `/caf%C3%A9/`. A path is what a cache keys on, so every
backend purges exactly this string (CloudFront, Cloudflare and Varnish get the same bytes).
"""

import logging
import re
import string
from urllib.parse import quote

from .policy import ContentClass, classify

logger = logging.getLogger(__name__)

MAX_PATH_LENGTH = 4000  # CloudFront's limit for one invalidation path; others are more lenient

# Left as they are by browsers in a path (RFC 3986 unreserved + sub-delims + ":@/"); `*` is ours to
# interpret (a trailing `/*` is a wildcard), so a file name holding one is never an exact path.
_PATH_SAFE = "/-._~!$&'()*+,;=:@[]|^"
_UNRESERVED = set(string.ascii_letters + string.digits + "-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


class InvalidPath(ValueError):
    """A path that cannot be purged; the message says why and is safe to show."""


def _keep_escape(match: re.Match) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def canonical_path(path: str) -> str:
    """A site-relative path as typed or sent (raw or already encoded) in its canonical form.

    Refuses what no cache holds under a site: no leading '/', a '//' prefix, '.' or '..' segments
    (also encoded), control characters, '*' anywhere but a final '/*'.
    """
    if not isinstance(path, str):
        raise InvalidPath("a path must be a string")
    if not path.startswith("/"):
        raise InvalidPath(f"{path[:100]!r} must start with '/'")
    if path.startswith("//"):
        raise InvalidPath(f"{path[:100]!r}: a path may not start with '//'")
    if any(ord(char) < 32 or ord(char) == 127 for char in path):
        raise InvalidPath(f"{path[:100]!r} contains control characters")
    if "*" in path[:-1]:
        raise InvalidPath(f"{path[:100]!r}: '*' is allowed only at the end")
    if path.endswith("*") and not path.endswith("/*"):
        # "/blog*" would also match "/blogroll"; purge by directory only.
        raise InvalidPath(f"{path[:100]!r}: a wildcard must follow '/' (e.g. /blog/*)")
    # Split on existing escapes so they are kept (normalised) and everything else is encoded once.
    pieces = []
    position = 0
    for match in _ESCAPE.finditer(path):
        pieces.append(quote(path[position : match.start()], safe=_PATH_SAFE))
        pieces.append(_keep_escape(match))
        position = match.end()
    pieces.append(quote(path[position:], safe=_PATH_SAFE))
    canonical = "".join(pieces)
    # Escaped dots were decoded above (unreserved), so "%2e%2e" is caught here too.
    for segment in canonical.split("/"):
        if segment in (".", ".."):
            raise InvalidPath(f"{path[:100]!r}: '.' and '..' segments are not allowed")
    if len(canonical) > MAX_PATH_LENGTH:
        raise InvalidPath(f"a path is longer than {MAX_PATH_LENGTH} characters once encoded")
    return canonical


def file_url_path(file_path: str) -> str:
    """The canonical URL path of a file of a deployment ('docs/Annual Report.pdf' ->
    '/docs/Annual%20Report.pdf'): its name is literal, so '%' and '*' are encoded too."""
    return canonical_path("/" + quote(file_path, safe=_PATH_SAFE.replace("*", "")))


# --- what a new deployment makes stale ------------------------------------------------------------


def file_purge_paths(file_path: str) -> list[str]:
    """The canonical URLs a file is served under: about/index.html is also /about/ and /about
    (which redirects to /about/, and may be a cached 404 from before), index.html also /.

    A name that cannot be an exact purge path (a literal '*', too long once encoded) is covered by its
    directory's wildcard instead, so it never drops the other paths.
    """
    directory = file_path.rsplit("/", 1)[0] + "/" if "/" in file_path else ""
    try:
        if "*" in file_path:
            raise InvalidPath("a literal '*'")
        url = file_url_path(file_path)
        if file_path == "index.html":
            return ["/", url]
        if file_path.endswith("/index.html"):
            folder = url[: -len("index.html")]
            return [folder, folder.rstrip("/"), url]
        return [url]
    except InvalidPath:
        logger.info("file %r is purged through its directory's wildcard", file_path[:200])
    parts = directory.split("/")[:-1]
    while parts:
        try:
            return [file_url_path("/".join(parts) + "/") + "*"]
        except InvalidPath:
            parts.pop()
    return ["/*"]


def changed_purge_paths(*, previous: dict | None, current: dict) -> list[str]:
    """URL paths whose content differs between two manifests (added, changed or removed files).

    Versioned assets never change under their name, so they are left out; everything else a CDN may
    hold for up to its max-age is listed.
    """
    previous = previous or {}
    changed = [
        path
        for path in sorted(set(previous) | set(current))
        if previous.get(path, {}).get("sha256") != current.get(path, {}).get("sha256")
        and classify("/" + path) is not ContentClass.VERSIONED
    ]
    return [url for path in changed for url in file_purge_paths(path)]
