"""DNS servers named in settings ("address", "address:port" or "[v6]:port"), for the lookups that must
not use the system's resolver: hostname verification and the webhooks' SSRF guard."""

import ipaddress

import dns.nameserver
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def nameserver_parse(spec: str) -> dns.nameserver.Do53Nameserver:
    """Parse "address", "address:port" or "[v6]:port"; ValueError when it is not an address."""
    spec = spec.strip()
    address, port = spec, 53
    if spec.startswith("["):  # [v6]:port
        address, _, rest = spec[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif spec.count(":") == 1:  # v4:port
        address, port_text = spec.split(":")
        port = int(port_text)
    ipaddress.ip_address(address)
    return dns.nameserver.Do53Nameserver(address, port)


def nameservers_from_setting(name: str) -> list[dns.nameserver.Do53Nameserver]:
    """The setting `name` parsed ([] for the system's resolver); ImproperlyConfigured naming the setting
    when an entry is not an address."""
    specs = [spec for spec in getattr(settings, name) if spec.strip()]
    try:
        return [nameserver_parse(spec) for spec in specs]
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"{name}: {specs!r} must be addresses, optionally with a port (127.0.0.1:5353)"
        ) from exc
