"""The DNS side of hostname verification: is `_platform-challenge.<hostname>` a TXT record holding the
hostname's token?

Resolvers come from HOSTNAME_DNS_RESOLVERS ("address" or "address:port"; the system's when empty), with
no cache: each check asks again. Only a definitive answer (the name does not exist, has no TXT record,
or its TXT records lack the token) counts as missing; a timeout or a failing server is "unknown", so an
outage of our own resolver never takes a verified hostname away.
"""

import enum
from dataclasses import dataclass

import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver
from django.conf import settings

from core.nameservers import nameservers_from_setting

CHALLENGE_LABEL = "_platform-challenge"
MAX_TXT_VALUES = 50  # read at most this many TXT strings of one name


class Outcome(enum.Enum):
    FOUND = "found"
    MISSING = "missing"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ChallengeResult:
    outcome: Outcome
    detail: str  # for the tenant: what was (not) found, or why the lookup failed


def challenge_name(hostname: str) -> str:
    return f"{CHALLENGE_LABEL}.{hostname}"


def configured_nameservers() -> list[dns.nameserver.Do53Nameserver]:
    """HOSTNAME_DNS_RESOLVERS parsed; ImproperlyConfigured with a clear message when one is not an address."""
    return nameservers_from_setting("HOSTNAME_DNS_RESOLVERS")


def _resolver() -> dns.resolver.Resolver:
    nameservers = configured_nameservers()
    resolver = dns.resolver.Resolver(configure=not nameservers)
    if nameservers:
        resolver.nameservers = nameservers
    resolver.lifetime = settings.HOSTNAME_DNS_TIMEOUT
    resolver.timeout = min(resolver.lifetime, 2.0)
    resolver.cache = None
    return resolver


def challenge_lookup(hostname: str, token: str) -> ChallengeResult:
    """Look the challenge record of hostname up and tell whether it holds token."""
    name = challenge_name(hostname)
    try:
        resolver = _resolver()
    except dns.resolver.NoResolverConfiguration:
        return ChallengeResult(Outcome.UNKNOWN, "No DNS resolver is configured on the platform; will try again.")
    try:
        answer = resolver.resolve(name, dns.rdatatype.TXT, search=False, raise_on_no_answer=True)
    except dns.resolver.NXDOMAIN:
        return ChallengeResult(Outcome.MISSING, f"{name} does not exist (NXDOMAIN).")
    except dns.resolver.NoAnswer:
        return ChallengeResult(Outcome.MISSING, f"{name} has no TXT record.")
    except dns.resolver.LifetimeTimeout:
        return ChallengeResult(Outcome.UNKNOWN, f"DNS lookup of {name} timed out; will try again.")
    except dns.resolver.NoNameservers:
        return ChallengeResult(Outcome.UNKNOWN, f"No DNS server answered for {name} (SERVFAIL); will try again.")
    except (dns.exception.DNSException, OSError) as exc:
        return ChallengeResult(Outcome.UNKNOWN, f"DNS lookup of {name} failed ({type(exc).__name__}); will try again.")
    values = []
    for record in list(answer)[:MAX_TXT_VALUES]:
        # One TXT record may be split into several strings of up to 255 bytes: they form one value.
        values.append(b"".join(record.strings).decode("ascii", errors="replace").strip())
    if token in values:
        return ChallengeResult(Outcome.FOUND, f"{name} holds the token.")
    return ChallengeResult(Outcome.MISSING, f"{name} has TXT records, but none is this hostname's token.")
