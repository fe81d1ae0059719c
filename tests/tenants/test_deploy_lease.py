"""A worker that dies mid-deploy never leaves the deployment `running` for good: its lease runs out and
the beat sweep retries it on another worker, or fails it with the reason after DEPLOY_MAX_ATTEMPTS."""

import os
import signal
import socket
import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tenants import services, tasks
from tenants.models import Deployment
from tests.helpers import wait_for
from tests.sitebundles import bundle_build, site_v1, site_v2
from tests.workers import CeleryWorker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stack]


class Blackhole:
    """An S3 endpoint that accepts connections and never answers: a worker using it hangs mid-deploy."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.held.append(connection)

    def close(self):
        for connection in self.held:
            connection.close()
        self.server.close()


@pytest.fixture
def doomed_worker(test_database_env, tmp_path):
    """A Celery worker on its own queue whose object storage hangs; the test SIGKILLs it."""
    blackhole = Blackhole()
    queue = f"doomed-{uuid.uuid4().hex[:8]}"
    hostname = f"doomed-{os.getpid()}@localhost"
    env = {**test_database_env, "S3_ENDPOINT_URL": f"http://127.0.0.1:{blackhole.port}", "DEPLOY_LEASE_SECONDS": "2"}
    worker = CeleryWorker(env, tmp_path / "doomed.log", queues=[queue], hostname=hostname, concurrency=1)
    worker.start()
    yield worker.process, queue
    worker.kill()
    blackhole.close()


def test_a_sigkilled_worker_mid_deploy_is_retried_by_the_sweep(website, doomed_worker, celery_worker):
    process, queue = doomed_worker
    services.deployment_execute(
        deployment=services.deployment_create(website=website, bundle=bundle_build(site_v1()), run=False)
    )
    deployment = services.deployment_create(website=website, bundle=bundle_build(site_v2()), run=False)
    tasks.deployment_run_task.apply_async((str(deployment.pk),), queue=queue)

    running = wait_for(lambda: Deployment.objects.filter(pk=deployment.pk, status="running").first(), timeout=30)
    assert running.attempts == 1 and running.lease_owner
    os.killpg(process.pid, signal.SIGKILL)  # mid-deploy: it was reading the bundle
    process.wait(timeout=10)

    # Its lease (2 s) runs out; until then the sweep leaves it alone.
    assert tasks.deployments_sweep_task() == {"retried": 0, "failed": 0, "requeued": 0}
    time.sleep(2.5)
    assert Deployment.objects.get(pk=deployment.pk).status == "running"  # what it was left as
    assert tasks.deployments_sweep_task()["retried"] == 1  # beat's task: queued for a live worker

    def finished():
        row = Deployment.objects.get(pk=deployment.pk)
        return row if row.status in ("succeeded", "failed") else None

    done = wait_for(finished, timeout=60)
    assert (done.status, done.attempts, done.lease_owner) == ("succeeded", 2, ""), done.error
    assert Client().get("/", headers={"Host": "www.a.test"}).content == b"<h1>home v2</h1>"


def test_a_deployment_whose_worker_keeps_dying_is_failed_with_the_reason(website, settings):
    from webhooks.models import Event

    settings.DEPLOY_MAX_ATTEMPTS = 2
    deployment = services.deployment_create(website=website, bundle=bundle_build(site_v1()), run=False)
    Deployment.objects.filter(pk=deployment.pk).update(
        status="running", attempts=2, started_at=timezone.now(), lease_owner="dead",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )  # fmt: skip
    # A task redelivered late cannot take it over either: its attempts are used up.
    assert services.deployment_execute(deployment=deployment).status == "running"
    assert tasks.deployments_sweep_task() == {"retried": 0, "failed": 1, "requeued": 0}
    failed = Deployment.objects.get(pk=deployment.pk)
    assert failed.status == "failed" and "stopped" in failed.error and "2 times" in failed.error
    assert "the last one dead;" in failed.error  # the process that held it last, from its lease owner
    assert Event.objects.filter(type="deployment.failed", data__deployment__id=str(deployment.pk)).exists()
    assert tasks.deployments_sweep_task()["failed"] == 0  # once
    from platform_site.celery import app

    assert app.conf.beat_schedule["tenants-deployments-sweep"]["task"] == "tenants.tasks.deployments_sweep_task"


def test_a_live_lease_is_not_taken_over(website):
    deployment = services.deployment_create(website=website, bundle=bundle_build(site_v1()), run=False)
    claimed, lease = services.deployment_claim(deployment_id=deployment.pk)
    assert services.deployment_claim(deployment_id=deployment.pk) is None
    assert services.deployment_execute(deployment=deployment).status == "running"  # left to its holder
    assert tasks.deployments_sweep_task()["retried"] == 0
    lease.renew()
    assert claimed.attempts == 1
