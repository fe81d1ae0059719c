"""Compressed delivery of tenant sites: br or gzip for text types, chosen from Accept-Encoding.

The origin compresses (Varnish, CloudFront and Cloudflare store and forward what it sends, keyed by
encoding; see deploy/varnish/default.vcl). Only text types are compressed: images, fonts, archives and
`.gz` files are already compressed and are sent as they are. A compressed body has its own ETag (the
file's plus `-br`/`-gzip`), as RFC 9110 wants for another representation.
"""

import gzip
import re

import brotli

# Bodies smaller than this gain nothing from compression (headers and framing cost more).
MIN_BYTES = 256
_COMPRESSIBLE = re.compile(
    r"^(text/|application/(javascript|json|xml|xhtml\+xml|manifest\+json|ld\+json|rss\+xml|atom\+xml|wasm)"
    r"|image/svg\+xml|[^;]*\+(json|xml)\b)"
)
# br first: smaller than gzip at a similar cost for these qualities.
_TOKEN = re.compile(r"(?:^|,)\s*(br|gzip)\s*(?:;\s*q\s*=\s*([0-9.]+))?\s*(?=,|$)", re.IGNORECASE)


def is_compressible(content_type: str) -> bool:
    return bool(_COMPRESSIBLE.match(content_type.lower()))


def negotiate(accept_encoding: str, content_type: str) -> str | None:
    """'br', 'gzip' or None (identity) for a response of content_type to a request's Accept-Encoding."""
    if not accept_encoding or not is_compressible(content_type):
        return None
    accepted = {}
    for token, quality in _TOKEN.findall(accept_encoding):
        try:
            accepted[token.lower()] = float(quality) if quality else 1.0
        except ValueError:
            continue
    for encoding in ("br", "gzip"):
        if accepted.get(encoding, 0) > 0:
            return encoding
    return None


def compress(body: bytes, encoding: str) -> bytes:
    if encoding == "br":
        # Quality 5: most of quality 11's gain on text at a small fraction of its time; the CDN keeps it.
        return brotli.compress(body, quality=5, mode=brotli.MODE_TEXT)
    return gzip.compress(body, compresslevel=6, mtime=0)


def variant_etag(etag: str, encoding: str | None) -> str:
    return etag if encoding is None else f'{etag[:-1]}-{encoding}"'
