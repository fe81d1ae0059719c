"""Hostname validation: what a website may answer to."""

import re

from django.core.exceptions import ValidationError

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
        if hostname in normalized:
            raise ValidationError(f"{hostname!r} is listed twice.")
        normalized.append(hostname)
    return normalized
