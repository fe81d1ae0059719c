"""Every blocked address form is refused at registration (400 with the field) and at delivery, whether the
URL spells the address or a DNS answer (a real DNS server on 127.0.0.1, tests/dnsserver.py) returns it.

The rule: the address and every IPv4 address it embeds must be global. No request goes to any of these
addresses: each is refused before a connection is made; the receivers used here listen on 127.0.0.1.
"""

import ipaddress
import logging

import pytest

from tenants import services as tenant_services
from webhooks import services, ssrf
from webhooks.models import Attempt, Delivery, Endpoint

pytestmark = pytest.mark.django_db

# (address, words the refusal names): every non-global form, including IPv4 hidden in IPv6.
REFUSED_ADDRESSES = [
    ("127.0.0.1", "loopback"),
    ("127.9.9.9", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 (refused, never bound)
    ("192.0.0.8", "reserved"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("192.88.99.1", "6to4 relay"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    # IPv4-compatible IPv6 (deprecated, RFC 4291), whatever the IPv4 address: Python calls it global.
    ("::127.0.0.1", "IPv4-compatible"),
    ("::10.0.0.1", "IPv4-compatible"),
    ("::8.8.8.8", "IPv4-compatible"),
    ("::ffff:0:7f00:1", "reserved"),  # SIIT's IPv4-translated form
    ("::ffff:127.0.0.1", "IPv4-mapped IPv6 form of a loopback"),
    ("::ffff:169.254.169.254", "IPv4-mapped IPv6 form of a link-local"),
    ("::ffff:10.0.0.1", "IPv4-mapped IPv6 form of a private"),
    ("::ffff:100.64.0.1", "IPv4-mapped IPv6 form of a carrier-grade NAT"),
    # NAT64 (RFC 6052's well-known prefix) reaches the IPv4 address it embeds.
    ("64:ff9b::127.0.0.1", "NAT64 form of a loopback"),
    ("64:ff9b::10.0.0.1", "NAT64 form of a private"),
    ("64:ff9b::169.254.169.254", "NAT64 form of a link-local"),
    ("64:ff9b:1::a00:1", "local-use NAT64"),  # RFC 8215: never global, whatever it embeds
    ("64:ff9b:1::808:808", "local-use NAT64"),
    # 6to4 (2002::/16) tunnels to the IPv4 address in bits 16-47.
    ("2002:7f00:1::", "6to4 form of a loopback"),
    ("2002:a00:1::1", "6to4 form of a private"),
    ("2002:a9fe:a9fe::", "6to4 form of a link-local"),
    ("2002:c0a8:101:1::1", "6to4 form of a private"),
    # Teredo (2001::/32): its client's IPv4 address is obfuscated in the last 32 bits.
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo client form of a loopback"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
    ("2001:0:808:808:8000:63bf:f7f7:f7f7", "Teredo"),  # server and client public: Teredo is never global
    # ISATAP: the interface identifier ::5efe:a.b.c.d, even behind a global prefix.
    ("2600:1f18::5efe:a00:1", "ISATAP form of a private"),
    ("2600:1f18::200:5efe:7f00:1", "ISATAP form of a loopback"),
    ("fe80::5efe:a00:1", "ISATAP form of a private"),
    ("fc00::1", "unique local"),
    ("fd12:3456::1", "unique local"),
    ("fe80::1", "link-local"),
    ("fec0::1", "site-local"),
    ("fefe::1", "site-local"),
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),  # global-scope multicast: Python calls it global
    ("100::1", "discard-only"),
    ("2001:2::1", "benchmarking"),
    ("2001:10::1", "ORCHID"),
    ("2001:20::1", "ORCHIDv2"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("5f00::1", "segment identifier"),
    ("2001:1::1", "IETF protocol assignment"),
    ("400::1", "outside 2000::/3"),  # unassigned by IANA
    ("e000::1", "outside 2000::/3"),
]

# Global addresses, including IPv4 in IPv6 forms that reach a global IPv4 address: accepted.
ACCEPTED_ADDRESSES = [
    "93.184.216.34",
    "8.8.8.8",
    "2606:2800:220:1:248:1893:25c8:1946",
    "2a00:1450:4001:80b::200e",
    "::ffff:93.184.216.34",
    "64:ff9b::93.184.216.34",  # an IPv6-only network's DNS64 answer for an IPv4-only receiver
    "2002:5db8:d822::1",  # 6to4 of 93.184.216.34
]


def _url(address: str) -> str:
    return f"https://[{address}]/hook" if ":" in address else f"https://{address}/hook"


# URL forms other than a plain address: names, numeric spellings, schemes, credentials.
BLOCKED_URLS = [
    *[_url(address) for address, _ in REFUSED_ADDRESSES],
    "https://localhost/hook",
    "https://[::ffff:7f00:1]/",
    "https://[0:0:0:0:0:ffff:7f00:1]/",
    "https://[0:0:0:0:0:0:7f00:1]/",  # ::127.0.0.1 written out
    "https://[::7f00:1]/",
    "https://[64:ff9b::7f00:1]/",
    "https://[fe80::1%25eth0]/",  # with a zone id
    "https://2130706433/",  # 127.0.0.1 in decimal
    "https://0x7f000001/",  # in hex
    "https://0x7f.0.0.1/",
    "https://0177.0.0.1/",  # in octal
    "https://127.1/",  # short form
    "https://017700000001/",
    "http://example.com/",  # http refused unless allowed
    "https://user:pass@example.com/",
    "ftp://example.com/",
    "https:///nohost",
]


@pytest.fixture(autouse=True)
def strict(settings):
    settings.WEBHOOKS_ALLOW_HTTP = False
    settings.WEBHOOKS_ALLOWED_NETWORKS = []


@pytest.mark.parametrize("url", BLOCKED_URLS)
def test_blocked_forms_are_refused_at_registration(staff_client, tenant, url):
    response = staff_client.post(
        "/api/v1/webhooks/endpoints/", {"tenant": str(tenant.pk), "url": url, "event_types": ["*"]}, format="json"
    )
    assert response.status_code == 400, response.content
    body = response.json()["error"]
    assert body["code"] == "invalid" and body["fields"]["url"][0]


def test_too_long_url_is_refused(staff_client, tenant, settings):
    url = "https://example.com/" + "a" * settings.WEBHOOKS_MAX_URL_LENGTH
    response = staff_client.post(
        "/api/v1/webhooks/endpoints/", {"tenant": str(tenant.pk), "url": url, "event_types": ["*"]}, format="json"
    )
    assert response.status_code == 400 and "url" in response.json()["error"]["fields"]


@pytest.mark.parametrize(("address", "reason"), REFUSED_ADDRESSES)
def test_every_non_global_address_form_is_refused_with_its_reason(address, reason):
    refusal = ssrf.address_refusal(address)
    assert refusal is not None and reason in refusal, (address, refusal)
    with pytest.raises(ssrf.BlockedDestination, match=reason):
        ssrf.destination_check(_url(address))


@pytest.mark.parametrize("address", ACCEPTED_ADDRESSES)
def test_global_addresses_and_forms_embedding_a_global_ipv4_are_accepted(address):
    assert ssrf.address_refusal(address) is None
    assert ssrf.destination_check(_url(address)).address == str(ipaddress.ip_address(address))


def test_the_allow_list_admits_an_address_but_not_a_deprecated_form_of_it():
    allowed = ("127.0.0.0/8",)
    assert ssrf.address_refusal("127.0.0.1", allowed=allowed) is None
    assert ssrf.address_refusal("::ffff:127.0.0.1", allowed=allowed) is None  # the socket connects to 127.0.0.1
    assert "IPv4-compatible" in ssrf.address_refusal("::127.0.0.1", allowed=allowed)
    assert "private" in ssrf.address_refusal("64:ff9b::10.0.0.1", allowed=allowed)


def test_public_address_is_accepted():
    destination = ssrf.destination_check("https://93.184.216.34:8443/in?x=1")
    assert (destination.address, destination.port, destination.target) == ("93.184.216.34", 8443, "/in?x=1")


def test_allow_list_admits_loopback_for_tests(settings):
    settings.WEBHOOKS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    assert ssrf.destination_check("https://127.0.0.1/").address == "127.0.0.1"
    assert ssrf.destination_check("https://[::ffff:127.0.0.1]/").address == "::ffff:7f00:1"
    with pytest.raises(ssrf.BlockedDestination):
        ssrf.destination_check("https://10.0.0.1/")


class RebindingResolver:
    """Answers a public address first (the check at registration), then a private one (delivery)."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = 0

    def __call__(self, host, port):
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return answer


def test_dns_rebinding_is_refused_at_delivery(monkeypatch, receiver):
    tenant = tenant_services.tenant_create(name="R", slug="rebind")
    resolver = RebindingResolver([["93.184.216.34"], ["127.0.0.1"]])
    monkeypatch.setattr(ssrf, "resolve", resolver)
    endpoint, _ = services.endpoint_create(
        tenant=tenant, url=f"https://hooks.rebind.test:{receiver.port}/hook", event_types=["*"]
    )
    event = services.event_record(tenant=tenant, type="tenant.suspended", data={"tenant": {"id": str(tenant.pk)}})
    (delivery_id,) = services.event_fan_out(event_id=event.pk)
    services.delivery_attempt(delivery_id=delivery_id)

    attempt = Attempt.objects.get(delivery_id=delivery_id)
    assert attempt.status_code is None and "SSRF" in attempt.error and "loopback" in attempt.error
    assert receiver.received() == [] and resolver.calls == 2


def test_resolver_answer_with_any_private_address_is_refused(monkeypatch):
    monkeypatch.setattr(ssrf, "resolve", lambda host, port: ["93.184.216.34", "10.0.0.5"])
    with pytest.raises(ssrf.BlockedDestination, match="private"):
        ssrf.destination_check("https://mixed.example.test/")


def test_connection_is_pinned_to_the_checked_address_with_the_hostname_as_host(monkeypatch, settings, receiver):
    """The name resolves (once, checked) to 127.0.0.1; the request goes there with Host: the name."""
    settings.WEBHOOKS_ALLOW_HTTP = True
    settings.WEBHOOKS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    monkeypatch.setattr(ssrf, "resolve", lambda host, port: ["127.0.0.1"])
    tenant = tenant_services.tenant_create(name="P", slug="pinned")
    endpoint, _ = services.endpoint_create(
        tenant=tenant, url=f"http://hooks.pinned.test:{receiver.port}/hook", event_types=["*"]
    )
    event = services.event_record(tenant=tenant, type="tenant.suspended", data={"tenant": {"id": str(tenant.pk)}})
    (delivery_id,) = services.event_fan_out(event_id=event.pk)
    assert services.delivery_attempt(delivery_id=delivery_id) == Delivery.Status.SUCCEEDED
    (request,) = receiver.received()
    assert request.headers["Host"] == f"hooks.pinned.test:{receiver.port}"


def test_private_url_slipped_into_the_database_is_refused_at_delivery(receiver):
    tenant = tenant_services.tenant_create(name="S", slug="slipped")
    endpoint, _ = services.endpoint_create(tenant=tenant, url="https://93.184.216.34/hook", event_types=["*"])
    endpoint.__class__.objects.filter(pk=endpoint.pk).update(url="https://169.254.169.254/latest/meta-data/")
    event = services.event_record(tenant=tenant, type="tenant.suspended", data={"tenant": {}})
    (delivery_id,) = services.event_fan_out(event_id=event.pk)
    services.delivery_attempt(delivery_id=delivery_id)
    attempt = Attempt.objects.get(delivery_id=delivery_id)
    assert attempt.status_code is None and "link-local" in attempt.error


# --- the same forms in DNS answers (a real DNS server on 127.0.0.1 that WEBHOOKS_DNS_RESOLVERS points to) ---


@pytest.fixture
def zone(dns_zone, dns_server, settings):
    settings.WEBHOOKS_DNS_RESOLVERS = [dns_server.address]
    return dns_zone


@pytest.mark.parametrize(("address", "reason"), REFUSED_ADDRESSES)
def test_dns_answers_with_non_global_forms_are_refused_at_registration(staff_client, tenant, zone, address, reason):
    zone.publish_addresses("hooks.answers.test", "93.184.216.34", address)  # one bad answer is enough
    response = staff_client.post(
        "/api/v1/webhooks/endpoints/",
        {"tenant": str(tenant.pk), "url": "https://hooks.answers.test/hook", "event_types": ["*"]},
        format="json",
    )
    assert response.status_code == 400, response.content
    (message,) = response.json()["error"]["fields"]["url"]
    assert reason in message and "hooks.answers.test" in message, message
    assert ("hooks.answers.test", "AAAA" if ":" in address else "A") in zone.queries
    assert not Endpoint.objects.filter(tenant=tenant).exists()


def test_names_that_do_not_resolve_are_refused_with_the_reason(staff_client, tenant, zone):
    zone.failing.add("failing.answers.test")
    for host in ("failing.answers.test", "nxdomain.answers.test"):
        response = staff_client.post(
            "/api/v1/webhooks/endpoints/",
            {"tenant": str(tenant.pk), "url": f"https://{host}/hook", "event_types": ["*"]},
            format="json",
        )
        assert response.status_code == 400, response.content
        assert "does not resolve" in response.json()["error"]["fields"]["url"][0]


def _deliver_one(tenant) -> Attempt:
    event = services.event_record(tenant=tenant, type="tenant.suspended", data={"tenant": {"id": str(tenant.pk)}})
    (delivery_id,) = services.event_fan_out(event_id=event.pk)
    services.delivery_attempt(delivery_id=delivery_id)
    return Attempt.objects.get(delivery_id=delivery_id)


REBOUND = ["::127.0.0.1", "::ffff:127.0.0.1", "64:ff9b::127.0.0.1", "2002:7f00:1::", "fec0::1", "127.0.0.1"]


@pytest.mark.parametrize("address", REBOUND)
def test_a_name_rebound_to_a_non_global_form_is_refused_at_send_time(zone, receiver, address):
    """Registered while the name answered a global address; at delivery it answers a hidden loopback
    form. The guard resolves again at send time and refuses before connecting."""
    tenant = tenant_services.tenant_create(name="Rebind", slug="rebind-dns")
    zone.publish_addresses("hooks.rebind.test", "93.184.216.34")
    services.endpoint_create(tenant=tenant, url=f"https://hooks.rebind.test:{receiver.port}/hook", event_types=["*"])
    zone.publish_addresses("hooks.rebind.test", address)

    attempt = _deliver_one(tenant)
    reason = dict(REFUSED_ADDRESSES)[address]
    assert attempt.status_code is None and "SSRF" in attempt.error and reason in attempt.error, attempt.error
    assert receiver.received() == []


@pytest.mark.parametrize("address", ["::127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::", "::ffff:10.0.0.1"])
def test_a_url_with_a_hidden_private_address_slipped_into_the_database_is_refused_at_send_time(receiver, address):
    tenant = tenant_services.tenant_create(name="Slipped", slug="slipped-v6")
    endpoint, _ = services.endpoint_create(tenant=tenant, url="https://93.184.216.34/hook", event_types=["*"])
    Endpoint.objects.filter(pk=endpoint.pk).update(url=f"https://[{address}]:{receiver.port}/hook")
    attempt = _deliver_one(tenant)
    assert attempt.status_code is None and "SSRF" in attempt.error, attempt.error
    assert receiver.received() == []


def test_a_name_answering_an_allowed_address_is_delivered_pinned_to_it(zone, settings, receiver, caplog):
    """The positive path through the DNS server: the answer is checked, and the request goes to it."""
    settings.WEBHOOKS_ALLOW_HTTP = True
    settings.WEBHOOKS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    zone.publish_addresses("hooks.allowed.test", "127.0.0.1")
    tenant = tenant_services.tenant_create(name="Allowed", slug="allowed-dns")
    services.endpoint_create(tenant=tenant, url=f"http://hooks.allowed.test:{receiver.port}/hook", event_types=["*"])
    with caplog.at_level(logging.INFO):
        attempt = _deliver_one(tenant)
    assert attempt.succeeded, attempt.error
    (request,) = receiver.received()
    assert request.headers["Host"] == f"hooks.allowed.test:{receiver.port}"
    assert {("hooks.allowed.test", "A"), ("hooks.allowed.test", "AAAA")} <= set(zone.queries)


def test_a_misconfigured_resolver_setting_is_a_start_up_error_naming_the_setting(settings):
    from django.core import checks

    settings.WEBHOOKS_DNS_RESOLVERS = ["not-an-address"]
    errors = [error for error in checks.run_checks() if error.id == "webhooks.E001"]
    assert len(errors) == 1 and "WEBHOOKS_DNS_RESOLVERS" in errors[0].msg
    settings.WEBHOOKS_DNS_RESOLVERS = ["127.0.0.1:5353", "[::1]:53"]
    assert not [error for error in checks.run_checks() if error.id == "webhooks.E001"]
