"""core.enqueue: tasks queued by reference after commit; only broker errors are caught, logged and counted."""

import logging
import uuid

import pytest
import redis
from django.conf import settings
from django.db import transaction
from kombu.exceptions import EncodeError
from prometheus_client import REGISTRY

from core.enqueue import enqueue_now, enqueue_on_commit
from tenants.tasks import deployment_run_task


def _failures(task) -> float:
    return REGISTRY.get_sample_value("platform_task_enqueue_failures_total", {"task": task.name}) or 0.0


@pytest.fixture
def queue():
    """A queue no worker consumes: what lands there stays for the test to count."""
    name = f"enqueue-test-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    yield lambda: client.llen(name), name
    client.delete(name)
    client.close()


@pytest.mark.django_db(transaction=True)
def test_queued_after_commit_and_never_for_a_rollback(queue):
    waiting, name = queue
    with transaction.atomic():
        enqueue_on_commit(deployment_run_task, str(uuid.uuid4()), queue=name)
        assert waiting() == 0  # not before the commit
    assert waiting() == 1
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_on_commit(deployment_run_task, str(uuid.uuid4()), queue=name)
        raise RuntimeError("the write fails")
    assert waiting() == 1


@pytest.mark.django_db
def test_a_broker_outage_is_logged_with_its_type_and_counted(stopped, caplog):
    before = _failures(deployment_run_task)
    stopped("redis")
    with caplog.at_level(logging.WARNING, logger="core.enqueue"):
        assert enqueue_now(deployment_run_task, str(uuid.uuid4())) is False
    assert _failures(deployment_run_task) == before + 1
    [record] = [r for r in caplog.records if r.name == "core.enqueue"]
    assert record.getMessage() == (
        "could not queue tenants.tasks.deployment_run_task (OperationalError); its sweeper queues it again"
    )


def test_anything_but_a_broker_error_raises(queue):
    _, name = queue
    before = _failures(deployment_run_task)
    with pytest.raises(EncodeError):
        enqueue_now(deployment_run_task, object(), queue=name)  # not JSON: a bug, not an outage
    assert _failures(deployment_run_task) == before
