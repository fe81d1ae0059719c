"""Fault injection: the broker (the stack's Redis, also cache and rate limits) stopped while events are
produced. The API keeps answering, the write commits with its event in the outbox, and once Redis is back
the sweeper delivers it through a real worker to a real receiver.

Runs first in the session (tests/hardening/conftest.py): a Celery worker that holds unacknowledged
messages when the Redis broker goes away exits with "Unrecoverable error" (kombu's redis transport fails
to restore them on a dead connection), so the suite's shared worker must not be running yet. In
production the supervisor restarts such a worker, and the outbox sweeper re-queues what Redis lost.
"""

import os

import pytest

from tests.helpers import stack, wait_for
from tests.webhooks import conftest as webhooks_fixtures
from tests.workers import CeleryWorker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stack]

# The webhooks tests' receivers and settings (autouse); a worker of this module's own, stopped after it.
receiver, webhooks_settings = webhooks_fixtures.receiver, webhooks_fixtures.webhooks_settings


@pytest.fixture(scope="module")
def broker_fault_worker(test_database_env, tmp_path_factory):
    worker = CeleryWorker(
        {**test_database_env, **webhooks_fixtures.WEBHOOKS_TEST_ENV},
        tmp_path_factory.mktemp("broker-fault-worker") / "worker.log",
        queues=[webhooks_fixtures.QUEUE], hostname=f"hardening-broker-{os.getpid()}@localhost",
        concurrency=4, pool="threads",
    )  # fmt: skip
    worker.start()
    yield worker
    worker.stop()


def test_broker_down_while_events_are_produced_then_the_outbox_catches_up(
    key_client, receiver, broker_fault_worker, stopped, settings
):
    """Redis (cache, rate limits and the broker) stopped: the API keeps answering (gateway fails open),
    the write commits with its event in the outbox; when Redis is back the sweeper delivers it."""
    from webhooks import services as webhook_services
    from webhooks.models import Delivery, Event

    tenant, client = key_client
    created = client.post(
        "/api/v1/webhooks/endpoints/", {"url": receiver.url(), "event_types": ["website.*"]}, format="json"
    )
    assert created.status_code == 201, created.content

    stopped("redis")
    response = client.post("/api/v1/websites/", {"name": "Made while the broker is down"}, format="json")
    assert response.status_code == 201, response.content  # what the user sees: success
    website_id = response.json()["id"]
    event = Event.objects.get(tenant=tenant, type="website.created")
    assert event.fanned_out_at is None and not receiver.received()  # kept, not sent

    stack("start", "redis")
    settings.WEBHOOKS_REQUEUE_AFTER_SECONDS = 0
    # The restarted Redis is empty: whatever was queued before is gone; the outbox is the record.
    swept = []

    def delivered() -> bool:
        swept.append(webhook_services.webhooks_sweep()["events"])
        return bool(receiver.received())

    wait_for(delivered, timeout=60, interval=1)
    assert swept[0] == 1  # the first sweep found the one event whose task the broker never got
    (body,) = receiver.events()
    assert body["type"] == "website.created" and body["data"]["website"]["id"] == website_id
    assert Delivery.objects.get(event=event).status == Delivery.Status.SUCCEEDED
