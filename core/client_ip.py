"""The client's address behind trusted proxies, for per-IP limits (django-ratelimit's RATELIMIT_IP_META_KEY).

Behind an ingress or a CDN every request comes from a proxy, so REMOTE_ADDR would put all clients in one
budget. X-Forwarded-For is read from the right, the end the proxies append to: with TRUSTED_PROXIES
(CIDRs), the first address that is not a trusted proxy is the client; with TRUSTED_PROXY_COUNT = N, the
Nth entry from the right. Whatever a client writes at the left end is never believed. Without either
setting, X-Forwarded-For is ignored.

python-ipware matches proxies by string prefix ("10.1."), not by network; the walk below is the few lines
that CIDRs need.
"""

import functools
import ipaddress

from django.conf import settings


@functools.lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr.strip())


def parse_trusted_proxies(cidrs: list[str]) -> tuple:
    """The networks of TRUSTED_PROXIES; ValueError naming the bad entry."""
    try:
        return _networks(tuple(cidrs))
    except ValueError as exc:
        raise ValueError(f"TRUSTED_PROXIES: {exc}") from exc


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An X-Forwarded-For entry as an address ("1.2.3.4", "1.2.3.4:5678", "[::1]:80", "::1"), or None."""
    value = value.strip()
    if value.startswith("["):  # [v6] or [v6]:port
        value = value[1 : value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


def client_ip(request) -> str:
    """The address per-IP limits count: REMOTE_ADDR, or the client the trusted proxies report."""
    remote = _address(request.META.get("REMOTE_ADDR", ""))
    if remote is None:
        return "0.0.0.0"  # noqa: S104 - no address at all (a unix socket): one shared budget, never an error
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if not forwarded:
        return str(remote)
    hops = forwarded.split(",")
    count = settings.TRUSTED_PROXY_COUNT
    if count:
        if len(hops) < count:  # did not come through every proxy: only the connection is known
            return str(remote)
        return str(_address(hops[-count]) or remote)
    networks = parse_trusted_proxies(settings.TRUSTED_PROXIES)
    if not networks:
        return str(remote)
    current = remote
    for hop in reversed(hops):
        if not any(current in network for network in networks):
            return str(current)
        previous = _address(hop)
        if previous is None:  # a trusted proxy passed on something unreadable: stop at that proxy
            return str(current)
        current = previous
    return str(current)
