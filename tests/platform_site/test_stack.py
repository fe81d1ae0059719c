"""The real parts the platform relies on: the streaming replica, Redis, a Celery worker."""

import subprocess
import sys

import pytest
from django.core.cache import cache
from django.db import connections

from tenants import services
from tenants.bundles import bundle_build
from tenants.models import Deployment, Tenant
from tests.helpers import wait_for


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_replica_receives_the_primary_writes(settings):
    assert settings.DATABASE_REPLICAS == ["replica_1"]
    tenant = services.tenant_create(name="Replicated", slug="replicated")
    replica = connections["replica_1"]

    def seen_on_replica():
        with replica.cursor() as cursor:
            cursor.execute("SELECT name FROM tenants_tenant WHERE id = %s", [tenant.pk])
            row = cursor.fetchone()
        return row and row[0]

    assert wait_for(seen_on_replica, timeout=10) == "Replicated"
    with replica.cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery(), current_setting('cluster_name')")
        assert cursor.fetchone() == (True, "platform-replica")
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT state FROM pg_stat_replication WHERE application_name = 'replica_1'")
        assert cursor.fetchone() == ("streaming",)


def test_cache_is_redis_and_shared_across_processes(test_database_env):
    from django_redis import get_redis_connection

    assert get_redis_connection("default").ping()
    cache.set("test:shared", "from-the-test-process", timeout=30)
    code = "import django; django.setup(); from django.core.cache import cache; print(cache.get('test:shared'))"
    result = subprocess.run([sys.executable, "-c", code], env=test_database_env, capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "from-the-test-process", result.stderr


@pytest.mark.django_db(transaction=True)
def test_celery_worker_runs_a_deployment(celery_worker):
    tenant = Tenant.objects.create(name="Worker", slug="worker")
    website = services.website_create(tenant=tenant, name="Site")
    bundle = bundle_build({"index.html": "<h1>hello</h1>"})
    deployment = services.deployment_create(website=website, bundle=bundle)  # queued on commit to the broker

    def finished():
        deployment.refresh_from_db()
        return deployment.status == Deployment.Status.SUCCEEDED

    wait_for(finished, timeout=30)
    website.refresh_from_db()
    assert website.active_deployment_id == deployment.pk
    assert deployment.started_at <= deployment.finished_at


@pytest.mark.django_db(transaction=True)
def test_celery_worker_survives_a_primary_restart(celery_worker):
    """Workers reuse database connections across tasks; after the primary restarts, the next task must
    get a fresh connection (as a request would), not fail on the dead one."""
    from django.db import connections

    from tests.helpers import stack

    tenant = Tenant.objects.create(name="Restart", slug="restart")
    website = services.website_create(tenant=tenant, name="Site")

    def deploy_and_wait():
        deployment = services.deployment_create(website=website, bundle=bundle_build({"index.html": "x"}))
        wait_for(lambda: Deployment.objects.get(pk=deployment.pk).status == Deployment.Status.SUCCEEDED, timeout=30)

    deploy_and_wait()  # the worker now holds open connections
    stack("stop", "primary")
    stack("start", "primary")
    for alias in connections:
        connections[alias].close()
    deploy_and_wait()
