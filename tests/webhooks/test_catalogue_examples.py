"""The catalogue's examples (GET /api/v1/webhooks/event-types/, docs/webhooks.md) look like the events sent:
the same keys, and values a client can rely on (a reactivated tenant is active, key prefixes are plk_)."""

import pytest

pytestmark = pytest.mark.django_db


def test_examples_have_the_shape_and_the_telling_values_of_real_events(tenant):
    from apikeys import services as apikey_services
    from tenants import services
    from webhooks.catalogue import EVENT_TYPES
    from webhooks.models import Event

    services.tenant_suspend(tenant=tenant, reason="unpaid")
    services.tenant_reactivate(tenant=tenant)
    apikey_services.apikey_create(tenant=tenant, name="ci", scopes=["websites:read"])
    for event_type in ("tenant.suspended", "tenant.reactivated", "apikey.created"):
        sent = Event.objects.filter(type=event_type).latest("created_at").data
        example = EVENT_TYPES[event_type].example
        assert set(example) == set(sent), event_type
        for key in sent:
            assert set(example[key]) == set(sent[key]), event_type
        if event_type.startswith("tenant."):
            assert example["tenant"]["status"] == sent["tenant"]["status"], event_type
        else:
            assert example["apikey"]["prefix"][:9] == sent["apikey"]["prefix"][:9] == "plk_live_"
