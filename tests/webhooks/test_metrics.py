"""webhooks/metrics.py: the endpoints' breakers, read from the database at scrape time."""

import pytest
from prometheus_client.core import GaugeMetricFamily

from observability.collectors import scrape_time_metric_names
from observability.endpoint import PLATFORM_STATE_COLLECTOR
from webhooks import metrics, services
from webhooks.models import Endpoint

pytestmark = pytest.mark.django_db


def _breakers() -> dict[str, float]:
    (family,) = metrics.breaker_families()
    assert isinstance(family, GaugeMetricFamily) and family.name == "webhook_endpoints_breaker_open"
    return {sample.labels["state"]: sample.value for sample in family.samples}


def test_active_endpoints_with_an_open_or_probing_breaker_are_counted(tenant, receiver):
    assert _breakers() == {"open": 0, "half_open": 0}
    endpoints = [
        services.endpoint_create(tenant=tenant, url=receiver.url(f"/{n}"), event_types=["*"])[0] for n in range(4)
    ]
    Endpoint.objects.filter(pk__in=[endpoints[0].pk, endpoints[1].pk]).update(breaker_state="open")
    Endpoint.objects.filter(pk=endpoints[2].pk).update(breaker_state="half_open")
    # A disabled endpoint's breaker no longer matters: nothing is sent to it.
    Endpoint.objects.filter(pk=endpoints[1].pk).update(is_active=False)
    assert _breakers() == {"open": 1, "half_open": 1}


def test_the_family_is_collected_at_every_scrape():
    assert "webhook_endpoints_breaker_open" in scrape_time_metric_names()
    PLATFORM_STATE_COLLECTOR.clear()
    names = {family.name for family in PLATFORM_STATE_COLLECTOR.collect()}
    assert "webhook_endpoints_breaker_open" in names
