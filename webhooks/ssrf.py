"""SSRF guard: which URLs an endpoint may have, and which addresses a delivery may connect to.

A URL is checked when it is registered and again at every delivery: the host is resolved, every
address it resolves to must be public (or in WEBHOOKS_ALLOWED_NETWORKS), and the connection is then
made to that checked address (webhooks/http.py pins it), so a DNS answer that changes between check
and connect (DNS rebinding) cannot redirect the request.
"""

import ipaddress
import socket
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Python's is_global misses a few of these (CGNAT, multicast), so each is named for a clear message.
_BLOCKED_V4 = [
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud metadata)"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "documentation"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
]
_BLOCKED_V6 = [
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b::/96", "NAT64"),
    ("100::/64", "discard"),
    ("2001:db8::/32", "documentation"),
    ("fc00::/7", "unique local (ULA)"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
]
_BLOCKED = [(ipaddress.ip_network(net), why) for net, why in _BLOCKED_V4 + _BLOCKED_V6]


class BlockedDestination(ValueError):
    """The URL or an address it resolves to may not be called; the message says why."""


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str  # the hostname as written (sent as Host and used for TLS SNI / certificate checks)
    port: int
    target: str  # path and query
    address: str  # the checked address the connection is pinned to


@lru_cache(maxsize=8)
def _networks(nets: tuple[str, ...]) -> list:
    # Parsed once per setting value, not once per delivery.
    return [ipaddress.ip_network(net.strip(), strict=False) for net in nets if net]


def _address_refusal(address: IPAddress, allowed: tuple[str, ...]) -> str | None:
    """Why this address may not be called, or None if it may (allowed: WEBHOOKS_ALLOWED_NETWORKS)."""
    if any(address in network for network in _networks(allowed)):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        # IPv4 hidden in IPv6 (::ffff:127.0.0.1, 6to4, Teredo) is judged as the IPv4 address it reaches.
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None:
            reason = _address_refusal(embedded, allowed)
            return f"IPv6 form of a {reason} address" if reason else None
    for network, why in _BLOCKED:
        if address.version == network.version and address in network:
            return why
    if not address.is_global:
        return "not publicly routable"
    return None


@lru_cache(maxsize=4096)
def _resolved_address_refusal(address: str, allowed: tuple[str, ...]) -> str | None:
    # A pure function of its arguments, memoised: judging an address costs more than the request's own Python.
    return _address_refusal(ipaddress.ip_address(address.split("%", 1)[0]), allowed)


def _numeric_host_refusal(host: str) -> str | None:
    """Hosts that are IPv4 addresses spelt in decimal, hex, octal or short form are refused outright."""
    try:
        ipaddress.IPv4Address(host)
        return None  # canonical dotted quad: checked like any address
    except ValueError:
        pass
    try:
        socket.inet_aton(host)
    except OSError:
        return None
    return "IP addresses must be written as four decimal numbers (decimal, hex and octal forms are refused)"


def resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to. Tests replace this to play a rebinding resolver."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def url_parse(url: str) -> tuple[str, str, int, str]:
    """Check the URL's form (not its addresses); returns (scheme, host, port, target)."""
    return _url_parse(url, settings.WEBHOOKS_MAX_URL_LENGTH, settings.WEBHOOKS_ALLOW_HTTP)[:4]


@lru_cache(maxsize=4096)
def _url_parse(url: str, max_length: int, allow_http: bool) -> tuple[str, str, int, str, str | None]:
    """url_parse, and the host's canonical form if it is an IP address; memoised (refusals are not)."""
    if len(url) > max_length:
        raise BlockedDestination(f"The URL is longer than {max_length} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BlockedDestination(f"The URL is malformed ({exc}).") from exc
    allowed_schemes = {"https", "http"} if allow_http else {"https"}
    if parts.scheme not in allowed_schemes:
        raise BlockedDestination("The URL must use https.")
    if parts.username is not None or parts.password is not None:
        raise BlockedDestination("The URL must not contain credentials.")
    host = parts.hostname or ""
    if not host:
        raise BlockedDestination("The URL has no host.")
    if parts.fragment:
        raise BlockedDestination("The URL must not contain a fragment.")
    refusal = _numeric_host_refusal(host)
    if refusal:
        raise BlockedDestination(refusal)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        literal = str(ipaddress.ip_address(host))
    except ValueError:
        literal = None
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), target, literal


def destination_check(url: str) -> Destination:
    """Parse, resolve and check every address; the first checked address is the one to connect to.

    The host is resolved at every call (no DNS cache of ours); only the pure parts, parsing the URL and
    judging an address, are memoised."""
    scheme, host, port, target, literal = _url_parse(
        url, settings.WEBHOOKS_MAX_URL_LENGTH, settings.WEBHOOKS_ALLOW_HTTP
    )
    if literal is not None:
        addresses = [literal]
    else:
        try:
            host.encode("idna")
            addresses = resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise BlockedDestination(f"The host {host!r} does not resolve.") from exc
        if not addresses:
            raise BlockedDestination(f"The host {host!r} does not resolve.")
    allowed = tuple(settings.WEBHOOKS_ALLOWED_NETWORKS)
    for address in addresses:
        refusal = _resolved_address_refusal(address, allowed)
        if refusal:
            raise BlockedDestination(f"The host {host!r} resolves to a {refusal} address, which is refused.")
    return Destination(scheme=scheme, host=host, port=port, target=target, address=addresses[0])
