"""Every blocked address form is refused at registration (400 with the field) and at delivery."""

import pytest

from tenants import services as tenant_services
from webhooks import services, ssrf
from webhooks.models import Attempt, Delivery

pytestmark = pytest.mark.django_db

BLOCKED_URLS = [
    "https://127.0.0.1/hook",
    "https://127.9.9.9/hook",
    "https://localhost/hook",
    "https://10.1.2.3/",
    "https://172.16.0.1/",
    "https://192.168.1.1/",
    "https://169.254.169.254/latest/meta-data/",
    "https://100.64.0.1/",
    "https://224.0.0.1/",
    "https://239.255.255.250/",
    "https://240.0.0.1/",
    "https://255.255.255.255/",
    "https://0.0.0.0/",
    "https://[::1]/",
    "https://[::]/",
    "https://[fc00::1]/",
    "https://[fd12:3456::1]/",
    "https://[fe80::1]/",
    "https://[ff02::1]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:169.254.169.254]/",
    "https://[::ffff:7f00:1]/",
    "https://[2002:7f00:1::]/",  # 6to4 wrapping 127.0.0.1
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
