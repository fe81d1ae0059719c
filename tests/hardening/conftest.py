"""Two tenants with one of everything each, and a key of tenant A holding every scope."""

import os
import re
import uuid
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Objects:
    """The ids of one tenant's objects, as strings (URL and body templates format with them)."""

    tenant: str
    website: str
    deployment: str
    endpoint: str
    delivery: str
    event: str
    key: str
    invalidation: str
    hostname: str
    website_name: str


def tenant_with_everything(slug: str, *, tier: str = "professional") -> Objects:
    from django.db import transaction
    from django.utils import timezone

    from apikeys import services as apikey_services
    from apikeys.scopes import SCOPES
    from cdn import services as cdn_services
    from tenants import services
    from tenants.bundles import bundle_build
    from webhooks import services as webhook_services
    from webhooks.models import Delivery

    tenant = services.tenant_create(name=f"Tenant {slug}", slug=slug, tier=tier)
    website = services.website_create(tenant=tenant, name=f"Site of {slug}", hostnames=[f"www.{slug}.test"])
    deployment = services.deployment_create(website=website, bundle=bundle_build({"index.html": slug}), run=False)
    # v1a: its public key is one more object of the tenant's that another tenant's key must not list.
    endpoint, _ = webhook_services.endpoint_create(
        tenant=tenant, url="http://127.0.0.1:9/hook", event_types=["*"], signature_scheme="v1a"
    )
    # A failed delivery, so bulk replay and redeliver have something to act on. Fanned out and failed in the
    # transaction that records the event: a Celery worker that a commit wakes finds it done, rather than
    # racing the fixture for the event (it skips the row the fixture locked and the fixture then finds none).
    with transaction.atomic():
        event = webhook_services.event_record(tenant=tenant, type="website.created", data={"website": {"id": "x"}})
        webhook_services.event_fan_out(event_id=event.pk)
        delivery = Delivery.objects.get(endpoint=endpoint, event=event)
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED, finished_at=timezone.now())
    api_key, _ = apikey_services.apikey_create(tenant=tenant, name=f"key of {slug}", scopes=list(SCOPES))
    invalidation = cdn_services.invalidation_request(website=website, paths=["/"], reason="fixture")
    return Objects(
        tenant=str(tenant.pk), website=str(website.pk), deployment=str(deployment.pk), endpoint=str(endpoint.pk),
        delivery=str(delivery.pk), event=str(event.pk), key=str(api_key.pk), invalidation=str(invalidation.pk),
        hostname=f"www.{slug}.test", website_name=website.name,
    )  # fmt: skip


@pytest.fixture
def hardening_webhooks(settings):
    """Endpoints on loopback are allowed, so creating one reaches the tenant checks."""
    settings.WEBHOOKS_ALLOW_HTTP = True
    settings.WEBHOOKS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    return settings


@pytest.fixture
def fresh_cache():
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def two_tenants(db, hardening_webhooks, fresh_cache, django_capture_on_commit_callbacks):
    """(a, b, raw key of A with every scope). Nothing is queued: on-commit callbacks are dropped."""
    from apikeys import services as apikey_services
    from apikeys.scopes import SCOPES
    from tenants.models import Tenant

    a = tenant_with_everything("tenant-a")
    b = tenant_with_everything("tenant-b")
    with django_capture_on_commit_callbacks(execute=True):
        # Published after commit: the gateway's key cache must know it.
        _, raw_key = apikey_services.apikey_create(
            tenant=Tenant.objects.get(pk=a.tenant), name="matrix", scopes=list(SCOPES)
        )
    return a, b, raw_key


# --- secrets in the run's output (tests/hardening/test_secrets_scan.py) -----------------------------
SECRET_PATTERNS = {
    "API key": re.compile(r"plk_(?:live|test)_[0-9A-Za-z]{50}"),
    "webhook secret": re.compile(r"whsec_[A-Za-z0-9+/=]{24,}"),
    "webhook private key": re.compile(r"whsk_[A-Za-z0-9+/=]{40,}"),  # v1a: base64 of 32 bytes
}
SCAN_LAST = "test_no_secret_in_the_output_of_the_whole_run"
RUN_FIRST = "test_broker_down_while_events_are_produced_then_the_outbox_catches_up"


def configured_secrets() -> dict[str, str]:
    """The secrets of this run's environment (values too short to be told from ordinary text are skipped:
    the local stack's S3 keys are moto's `testing`)."""
    found = {}
    for name in ("DJANGO_SECRET_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "FIELD_ENCRYPTION_KEY"):
        for index, value in enumerate(os.environ.get(name, "").split(",")):
            if len(value.strip()) >= 16:
                found[f"{name}[{index}]"] = value.strip()
    return found


def secrets_in(text: str, known: dict[str, str]) -> list[str]:
    names = [name for name, pattern in SECRET_PATTERNS.items() if pattern.search(text)]
    return names + [name for name, value in known.items() if value in text]


class RunOutput:
    """What every test wrote to its logs and stderr, scanned as the run goes (only findings are kept)."""

    findings: list = []
    scanned_bytes = 0
    known: dict = {}

    @classmethod
    def scan(cls, where: str, text: str) -> None:
        cls.scanned_bytes += len(text)
        for name in secrets_in(text, cls.known):
            cls.findings.append((where, name))


def pytest_collection_modifyitems(config, items):
    """The broker fault runs before any test starts the shared Celery worker (see test_broker_fault.py);
    the scan of the whole run's output runs after every other test."""
    RunOutput.known = configured_secrets()
    first = [item for item in items if item.name == RUN_FIRST]
    last = [item for item in items if item.name == SCAN_LAST]
    items[:] = first + [item for item in items if item.name not in (SCAN_LAST, RUN_FIRST)] + last


def pytest_runtest_logreport(report):
    for title, content in report.sections:
        # Logs and stderr; captured stdout may hold what a command shows an operator once (a new key).
        if "log" in title.lower() or "stderr" in title.lower():
            RunOutput.scan(f"{report.nodeid} ({title})", content)


@pytest.fixture
def key_client():
    from rest_framework.test import APIClient

    from apikeys import services as apikey_services
    from apikeys.scopes import SCOPES
    from tenants import services as tenant_services

    tenant = tenant_services.tenant_create(name="Faults", slug=f"faults-{uuid.uuid4().hex[:8]}", tier="professional")
    _, raw_key = apikey_services.apikey_create(tenant=tenant, name="faults", scopes=list(SCOPES))
    return tenant, APIClient(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
