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

# The rule: the address, and every IPv4 address it embeds, must be globally routable. Python's is_global
# alone is not enough (3.11 calls ::127.0.0.1, fec0::1, 64:ff9b:1::1 and global-scope multicast global),
# so the special-purpose ranges are named here, each for a clear message, and checked first.
_BLOCKED_V4 = [
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud metadata)"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "deprecated 6to4 relay"),
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
    ("::/96", "deprecated IPv4-compatible IPv6"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("::/8", "reserved"),  # also SIIT's ::ffff:0:a.b.c.d; IPv4-mapped ::ffff:a.b.c.d is judged as its IPv4
    ("100::/64", "discard-only"),
    ("2001::/32", "Teredo"),
    ("2001:2::/48", "benchmarking"),
    ("2001:10::/28", "deprecated ORCHID"),
    ("2001:20::/28", "ORCHIDv2"),
    ("2001:db8::/32", "documentation"),
    ("2001::/23", "IETF protocol assignment"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "SRv6 segment identifier"),
    ("fc00::/7", "unique local (ULA)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "deprecated site-local"),
    ("ff00::/8", "multicast"),
]
_BLOCKED = [(ipaddress.ip_network(net), why) for net, why in _BLOCKED_V4 + _BLOCKED_V6]
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")  # every other IPv6 range is special-purpose or unassigned
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052's well-known prefix: the IPv4 address is the last 32 bits
_SIXTOFOUR = ipaddress.ip_network("2002::/16")
_ISATAP_IDS = (0x00005EFE, 0x02005EFE)  # RFC 5214: the interface identifier ::0:5efe:a.b.c.d (or 200:5efe)


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


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """The IPv4 addresses an IPv6 address carries, each with the name of its form: a packet to it
    reaches (or is tunnelled through) that IPv4 address, so each must be as acceptable as the address."""
    found = []
    if address in _NAT64:
        found.append(("NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)))
    if address.sixtofour is not None:
        found.append(("6to4", address.sixtofour))
    if address.teredo is not None:
        server, client = address.teredo
        found += [("Teredo server", server), ("Teredo client", client)]
    if (int(address) >> 32) & 0xFFFFFFFF in _ISATAP_IDS:
        found.append(("ISATAP", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)))
    return found


def _address_refusal(address: IPAddress, allowed: tuple[str, ...]) -> str | None:
    """Why this address may not be called, or None if it may (allowed: WEBHOOKS_ALLOWED_NETWORKS)."""
    if any(address in network for network in _networks(allowed)):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # the socket connects to the IPv4 address itself
            reason = _address_refusal(address.ipv4_mapped, allowed)
            return f"IPv4-mapped IPv6 form of a {reason}" if reason else None
        for form, ipv4 in embedded_ipv4(address):
            reason = _address_refusal(ipv4, allowed)
            if reason:
                return f"{form} form of a {reason}"
        if address in _NAT64:
            return None  # a global IPv4 address through the NAT64 gateway (an IPv6-only network's DNS64)
    for network, why in _BLOCKED:
        if address.version == network.version and address in network:
            return why
    if address.version == 6 and address not in _GLOBAL_UNICAST_V6:
        return "non-global IPv6 (outside 2000::/3)"
    if not address.is_global or address.is_multicast or address.is_reserved:
        return "not publicly routable"
    return None


def address_refusal(address: str, *, allowed: tuple[str, ...] = ()) -> str | None:
    """Why an address (a string, with or without a %zone) may not be called, or None if it may."""
    return _resolved_address_refusal(address, tuple(allowed))


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
    """Every address the host resolves to: asked of WEBHOOKS_DNS_RESOLVERS when set (A and AAAA, no cache),
    else of the system's resolver. OSError when the lookup fails."""
    nameservers = configured_nameservers()
    if nameservers:
        return _resolve_with(nameservers, host)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def configured_nameservers() -> list:
    """WEBHOOKS_DNS_RESOLVERS parsed (checked at start, webhooks/checks.py); [] for the system's resolver."""
    from core.nameservers import nameservers_from_setting

    return nameservers_from_setting("WEBHOOKS_DNS_RESOLVERS")


def _resolve_with(nameservers: list, host: str) -> list[str]:
    import dns.exception
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = nameservers
    resolver.lifetime = settings.WEBHOOKS_CONNECT_TIMEOUT
    resolver.timeout = min(resolver.lifetime, 2.0)
    resolver.cache = None
    addresses = []
    for rdtype in ("A", "AAAA"):
        try:
            answer = resolver.resolve(host, rdtype, search=False, raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        except dns.exception.DNSException as exc:
            raise OSError(f"DNS lookup of {host} failed ({type(exc).__name__})") from exc
        addresses += [record.address for record in answer]
    return list(dict.fromkeys(addresses))


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
            if literal is not None:
                raise BlockedDestination(f"The address {address} is a {refusal} address, which is refused.")
            raise BlockedDestination(f"The host {host!r} resolves to {address}, a {refusal} address, which is refused.")
    return Destination(scheme=scheme, host=host, port=port, target=target, address=addresses[0])
