"""Hostnames: what a website may answer to, and the preview host every website has.

A website is served on its verified hostnames and on `<website id>.SITES_PREVIEW_DOMAIN`, never on
the platform's own host (PLATFORM_HOST). Tenants may not claim the platform's names, the preview
domain or anything beneath them (SITES_RESERVED_DOMAINS adds more).
"""

import re
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http.request import validate_host

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
MAX_HOSTNAMES_PER_WEBSITE = 20


def normalize_hostname(value: str) -> str:
    """Lower-case, IDNA-encode and check a hostname; raise ValidationError with a clear message."""
    hostname = (value or "").strip().rstrip(".").lower()
    if not hostname:
        raise ValidationError("A hostname cannot be empty.")
    try:
        hostname = hostname.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValidationError(f"{value!r} is not a valid hostname.") from exc
    labels = hostname.split(".")
    if len(hostname) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValidationError(f"{value!r} is not a valid hostname (expected e.g. www.example.com).")
    if labels[-1].isdigit():
        raise ValidationError(f"{value!r} is an IP address; websites are served by name.")
    return hostname


def normalize_hostnames(values: list[str]) -> list[str]:
    if len(values) > MAX_HOSTNAMES_PER_WEBSITE:
        raise ValidationError(f"At most {MAX_HOSTNAMES_PER_WEBSITE} hostnames per website.")
    normalized = []
    for value in values:
        hostname = normalize_hostname(value)
        check_claimable(hostname)
        if hostname in normalized:
            raise ValidationError(f"{hostname!r} is listed twice.")
        normalized.append(hostname)
    return normalized


def preview_host(website_id) -> str:
    """The host a website is always served on: `<website id>.<SITES_PREVIEW_DOMAIN>`."""
    return f"{website_id}.{settings.SITES_PREVIEW_DOMAIN}"


def website_id_from_preview_host(hostname: str) -> uuid.UUID | None:
    """The website id a preview host names (canonical lower-case form only: one host per website)."""
    suffix = "." + settings.SITES_PREVIEW_DOMAIN
    if not hostname.endswith(suffix):
        return None
    label = hostname[: -len(suffix)]
    if len(label) != 36:
        return None
    try:
        website_id = uuid.UUID(label)
    except ValueError:
        return None
    return website_id if str(website_id) == label else None


def reserved_domains() -> list[str]:
    names = [settings.PLATFORM_HOST, settings.SITES_PREVIEW_DOMAIN, *settings.SITES_RESERVED_DOMAINS]
    return [name.strip().lower().strip(".") for name in names if name.strip().strip(".")]


def check_claimable(hostname: str) -> None:
    """Refuse a (normalised) hostname that belongs to the platform (its own names, the preview domain) or
    that could never be verified (its challenge record's name would be longer than DNS allows)."""
    from .dns_challenge import challenge_name

    if len(challenge_name(hostname)) > 253:
        raise ValidationError(
            f"{hostname!r} is too long to be verified: {challenge_name(hostname)!r} exceeds 253 characters."
        )
    for domain in reserved_domains():
        if hostname == domain or hostname.endswith("." + domain):
            raise ValidationError(f"{hostname!r} belongs to the platform and cannot be used by a website.")
    if validate_host(hostname, [host for host in settings.ALLOWED_HOSTS if host != "*"]):
        raise ValidationError(f"{hostname!r} is one of the platform's own hosts and cannot be used by a website.")
