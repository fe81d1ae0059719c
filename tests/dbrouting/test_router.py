"""The primary/replica router against the real streaming pair of deploy/local.

Where a query ran is read from the servers themselves (pg_stat_activity, by application_name), and
lag is made on demand with recovery_min_apply_delay on the replica.
"""

import os
import re
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections, router, transaction
from rest_framework.test import APIClient

from dbrouting import routing as db_routing
from dbrouting.routing import accept_stale, use_primary
from tenants.models import Hostname, Tenant
from tests.conftest import REPO_ROOT
from tests.helpers import wait_for

from .conftest import ran_on

pytestmark = [
    pytest.mark.replica_routing,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

REPLICA = "replica_1"
LAG_SECONDS = 10  # longer than any test step; the fixture resets it, and the replica then catches up at once


@pytest.fixture
def make_client(django_user_model):
    def make(name: str) -> APIClient:
        from django.contrib.auth.models import Group

        from console.roles import PLATFORM_ADMINS

        user = django_user_model.objects.create_user(username=name, password="x-pass-12345", is_staff=True)
        user.groups.add(Group.objects.get(name=PLATFORM_ADMINS))  # the API checks the operator's role
        client = APIClient()
        client.force_login(user)
        return client

    return make


def _marker() -> str:
    return "m" + uuid.uuid4().hex[:12]


def _tenant_count(client: APIClient, marker: str) -> int:
    response = client.get("/api/v1/tenants/", {"search": marker})
    assert response.status_code == 200, response.content
    return response.json()["count"]


def test_client_reads_its_write_at_once_while_others_read_the_lagging_replica(
    make_client, replica_delay, monitor, settings
):
    writer, other = make_client("writer"), make_client("other")
    replica_delay(LAG_SECONDS)
    marker = _marker()

    response = writer.post("/api/v1/tenants/", {"name": marker, "slug": marker}, format="json")
    assert response.status_code == 201, response.content

    # The writer sees its write immediately, although the replica has not replayed it...
    assert _tenant_count(writer, marker) == 1
    assert ran_on("default", marker)
    # ...while another client's read is served by the replica, which proves it by not having the row yet.
    assert _tenant_count(other, marker) == 0
    assert ran_on(REPLICA, marker)
    assert monitor.replica().lag_bytes > 0

    # Lag beyond the configured bound takes the replica out of rotation; reads go to the primary.
    settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 0.5
    wait_for(lambda: not monitor.replica().in_rotation, timeout=10)
    marker_after = _marker()
    assert _tenant_count(other, marker_after) == 0
    assert ran_on("default", marker_after)
    assert not ran_on(REPLICA, marker_after)


def _task_outcome(log_path: Path, task_id: str) -> str:
    """What a task returned, from the worker's log line for it (the app keeps no results)."""
    pattern = re.compile(rf"\[{re.escape(task_id)}\] succeeded in [0-9.]+s: '([^']*)'")
    return wait_for(lambda: (found := pattern.search(log_path.read_text())) and found.group(1), timeout=20)


def test_a_task_acting_for_a_client_sees_its_write(
    make_client, django_user_model, website, celery_worker, replica_delay, dns_zone
):
    from tenants.tasks import hostname_verify_task

    client = make_client("operator-dns")
    log_path = Path(os.readlink(f"/proc/{celery_worker.pid}/fd/1"))
    replica_delay(LAG_SECONDS)

    # The client adds a hostname; the lagging replica will not have the row for LAG_SECONDS.
    response = client.patch(
        f"/api/v1/websites/{website.pk}/", {"hostnames": ["www.a.test", "new.a.test"]}, format="json"
    )
    assert response.status_code == 200, response.content
    [record] = [d["record"] for d in response.json()["hostname_details"] if d["hostname"] == "new.a.test"]
    dns_zone.publish(record["name"], record["value"])
    with use_primary():
        hostname = Hostname.objects.get(website=website, hostname="new.a.test")
        user_id = django_user_model.objects.get(username="operator-dns").pk

    # The verification task's first step is a read of the hostname row. Control: published with no
    # client position, it reads the lagging replica and finds no such hostname.
    token = db_routing.begin()
    try:
        control = hostname_verify_task.delay(hostname.pk)
    finally:
        db_routing.end(token)
    assert _task_outcome(log_path, control.id) == "gone"

    # Published for the client (its identity travels with the task), it sees the client's write: the
    # worker reads from the primary, or from a replica that has replayed the client's position.
    token = db_routing.begin(client_ids=(f"user:{user_id}",))
    try:
        for_client = hostname_verify_task.delay(hostname.pk)
    finally:
        db_routing.end(token)
    assert _task_outcome(log_path, for_client.id) == "verified"
    # Still lagging: the replica alone could not have shown the row, so the client's position decided.
    assert not Hostname.objects.using(REPLICA).filter(pk=hostname.pk).exists()
    with use_primary():
        hostname.refresh_from_db()
    assert hostname.status == Hostname.Status.VERIFIED


def test_replica_down_leaves_rotation_and_returns(make_client, monitor, caught_up, stopped, settings):
    # The admin page renders without collectstatic's manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    client = make_client("reader")
    caught_up()
    marker = _marker()
    assert _tenant_count(client, marker) == 0
    assert ran_on(REPLICA, marker)

    stopped("replica")
    wait_for(lambda: not monitor.replica().up, timeout=10)
    marker_down = _marker()
    assert _tenant_count(client, marker_down) == 0  # no error: served by the primary
    assert ran_on("default", marker_down)

    # Visible in /readyz (still ready: replicas are optional), in Prometheus and in the admin.
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"][REPLICA]["ok"] is False
    assert ready.json()["checks"][REPLICA]["in_rotation"] is False
    settings.METRICS_TOKEN = "router-test-token"  # real mode: /metrics needs the bearer token
    metrics_auth = {"HTTP_AUTHORIZATION": "Bearer router-test-token"}
    assert (
        'platform_db_replica_in_rotation{alias="replica_1"} 0.0'
        in client.get("/metrics", **metrics_auth).content.decode()
    )
    assert 'data-in-rotation="false"' in client.get("/admin/replicas/").content.decode()

    subprocess.run(
        [sys.executable, str(REPO_ROOT / "deploy/local/stack"), "start", "replica"], check=True, capture_output=True
    )
    wait_for(lambda: monitor.replica().in_rotation, timeout=20)
    connections[REPLICA].close()
    marker_back = _marker()
    assert _tenant_count(client, marker_back) == 0
    assert ran_on(REPLICA, marker_back)
    ready = client.get("/readyz").json()["checks"][REPLICA]
    assert ready["ok"] and ready["in_rotation"] and ready["replay_lsn"]
    assert (
        'platform_db_replica_in_rotation{alias="replica_1"} 1.0'
        in client.get("/metrics", **metrics_auth).content.decode()
    )


def test_primary_down_reads_are_served_and_writes_get_503(make_client, monitor, caught_up, stopped):
    client = make_client("operator2")
    caught_up()
    stopped("primary")
    monitor.poll_now()
    wait_for(lambda: (snapshot := monitor.snapshot()) is not None and not snapshot.primary_up, timeout=10)

    marker = _marker()
    assert _tenant_count(client, marker) == 0
    assert ran_on(REPLICA, marker)

    response = client.post("/api/v1/tenants/", {"name": marker, "slug": marker}, format="json")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "primary_unavailable"
    assert client.get("/readyz").status_code == 503  # the primary is required
    # A non-API view that needs the primary gets a plain 503, not a 500 traceback.
    admin_add = client.post("/admin/tenants/tenant/add/", {"name": marker, "slug": marker, "tier": "free"})
    assert admin_add.status_code == 503, admin_add.content
    assert admin_add.content.decode().startswith("The primary database is unavailable")


def test_routing_controls(make_client, caught_up):
    caught_up()
    client_id = f"user:controls-{uuid.uuid4()}"
    token = db_routing.begin(client_ids=(client_id,))
    try:
        assert router.db_for_read(Tenant) == REPLICA
        with use_primary():
            assert router.db_for_read(Tenant) == "default"
        assert use_primary()(lambda: router.db_for_read(Tenant))() == "default"
        with transaction.atomic():
            assert router.db_for_read(Tenant) == "default"

        # A recorded position no replica has reached keeps this client on the primary...
        db_routing.record_client_write((client_id,), lsn=2**62)
        db_routing.record_client_write((client_id,), lsn=5)  # a late, older position never lowers it
        db_routing.current_state()._lsn_for = None
        assert router.db_for_read(Tenant) == "default"
        # ...unless the view explicitly accepts bounded staleness.
        assert accept_stale(max_lag_seconds=30)(lambda: router.db_for_read(Tenant))() == REPLICA
        # Any write in this context sends its later reads to the primary.
        Tenant.objects.filter(pk=uuid.uuid4()).update(name="x")
        assert accept_stale(max_lag_seconds=30)(lambda: router.db_for_read(Tenant))() == "default"
    finally:
        db_routing.end(token)
    with pytest.raises(ValueError):
        accept_stale(max_lag_seconds=-1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_migrations_never_touch_a_replica(test_database_env):
    assert router.allow_migrate("default", "tenants") is True
    assert router.allow_migrate(REPLICA, "tenants") is False
    # With the replica's address pointing at nothing, migrating and checking migrations still works:
    # neither ever opened a connection to it.
    env = dict(test_database_env, DATABASE_REPLICA_URLS=f"postgres://postgres@127.0.0.1:{_free_port()}/x")
    for command in (["migrate", "--noinput"], ["makemigrations", "--check", "--dry-run"]):
        result = subprocess.run(
            [sys.executable, "manage.py", *command], cwd=REPO_ROOT, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr[-2000:]


def test_without_replicas_no_router_and_no_middleware(test_database_env):
    env = dict(test_database_env, DATABASE_REPLICA_URLS="")
    script = (
        "from django.conf import settings; "
        "print(settings.DATABASE_ROUTERS, any('ReadYourWrites' in m for m in settings.MIDDLEWARE))"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[] False"
    assert settings.DATABASE_ROUTERS == ["dbrouting.router.PrimaryReplicaRouter"]


def test_api_key_client_reads_its_write_while_the_replica_lags(tenant, replica_delay):
    """Read-your-writes for a tenant's developer identified by the API-key gateway (no cookies)."""
    from apikeys import services as apikey_services

    _, raw_key = apikey_services.apikey_create(tenant=tenant, name="ci", scopes=["websites:read", "websites:write"])
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    # a second key of the same tenant is another client: it may see the tenant's rows, but late
    _, other_key = apikey_services.apikey_create(tenant=tenant, name="dashboard", scopes=["websites:read"])
    other = APIClient(HTTP_AUTHORIZATION=f"Bearer {other_key}")
    assert client.get("/api/v1/websites/").status_code == 200  # key cached before the lag starts
    assert other.get("/api/v1/websites/").status_code == 200
    replica_delay(LAG_SECONDS)

    marker = _marker()
    response = client.post("/api/v1/websites/", {"name": marker, "hostnames": [f"{marker}.example.com"]}, format="json")
    assert response.status_code == 201, response.content
    listing = client.get("/api/v1/websites/", {"search": marker})
    # the replica applies WAL 10 s late, so this row can only have come from the primary
    assert listing.status_code == 200 and listing.json()["count"] == 1
    # the other key's reads still use the lagging replica, which has not replayed the write yet
    assert other.get("/api/v1/websites/", {"search": marker}).json()["count"] == 0
    assert ran_on(REPLICA, marker)
    replica_delay(0)
    wait_for(lambda: other.get("/api/v1/websites/", {"search": marker}).json()["count"] == 1, timeout=20)
