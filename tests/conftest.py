"""The suite runs against the real local stack (deploy/local/stack): PostgreSQL primary + streaming
replica, Redis, a real Celery worker. ./bin/test starts it and exports its environment."""

import os
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        pytest.exit(
            "the suite runs against the real stack: use ./bin/test, or "
            'deploy/local/stack up && eval "$(deploy/local/stack env)" first',
            returncode=4,
        )
    _dummy_cdn_by_default()
    _flush_retries_on_deadlock()
    _test_servers_answer_without_nagle_delay()


def _dummy_cdn_by_default():
    """`deploy/local/stack env` points CDN_BACKENDS at the stack's Varnish for people running real mode on
    it. The suite's default is the recording dummy backend (in this process and in the workers and
    servers it starts); tests of the Varnish backend configure it themselves (tests/cdn)."""
    os.environ.pop("CDN_BACKENDS", None)
    from django.conf import settings

    settings.CDN_BACKENDS = {"default": {"BACKEND": "cdn.backends.dummy.DummyBackend", "OPTIONS": {}}}


def _test_servers_answer_without_nagle_delay():
    """Every HTTP server a test starts in this process (Django's live servers, the webhook receivers, the
    fake Cloudflare API) is a socketserver handler that sends a response's headers and body in separate
    writes; with Nagle's algorithm the body waits for the client's delayed ACK of the headers, 40 ms a
    request on Linux (about 80 s of the Schemathesis run alone). gunicorn, what the platform serves with,
    sets TCP_NODELAY itself, as the benchmarks' receivers do."""
    import socketserver

    socketserver.StreamRequestHandler.disable_nagle_algorithm = True


def _flush_retries_on_deadlock():
    """A transactional test ends with a flush (TRUNCATE of every table). A real Celery worker may still be
    finishing that test's work, holding a row lock on one table while it waits for another that TRUNCATE
    already holds: PostgreSQL breaks the deadlock by failing the flush, and every later test would see the
    rows. Run the flush again, as any client of a deadlock should; the worker's transaction has ended."""
    import psycopg
    from django.core.management.base import CommandError
    from django.test.testcases import TransactionTestCase

    teardown = TransactionTestCase._fixture_teardown

    def _fixture_teardown(self):
        for attempt in range(5):
            try:
                return teardown(self)
            except CommandError as exc:
                cause = exc.__cause__
                while cause is not None and not isinstance(cause, psycopg.errors.DeadlockDetected):
                    cause = cause.__cause__
                if cause is None or attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))

    TransactionTestCase._fixture_teardown = _fixture_teardown


@pytest.fixture
def staff_user(django_user_model):
    """An operator of the platform admins role (the API, the admin and the commands check the role)."""
    from console.roles import PLATFORM_ADMINS
    from tests.helpers import operator_create

    return operator_create("operator", "operator-pass-1", PLATFORM_ADMINS)


@pytest.fixture
def staff_client(staff_user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(staff_user)
    return client


@pytest.fixture
def admin_client_logged_in(client, django_user_model):
    """Django's test client logged in to the admin as a superuser ("root-op"): the one admin login."""
    user = django_user_model.objects.create_superuser("root-op", "op@example.test", "pass-123-long")
    client.force_login(user)
    return client


@pytest.fixture
def tenant(db):
    from tenants import services

    return services.tenant_create(name="Tenant A", slug="tenant-a", tier="starter")


@pytest.fixture
def website(tenant):
    """A website with one custom hostname, www.a.test, verified (served by Host)."""
    from tenants import services
    from tests.helpers import hostnames_verified

    website = services.website_create(tenant=tenant, name="Site A", hostnames=["www.a.test"])
    hostnames_verified("www.a.test")
    return website


# --- DNS: hostname verification asks a DNS server of the suite's own (tests/dnsserver.py) -----------
@pytest.fixture(scope="session", autouse=True)
def dns_server():
    """Every DNS lookup of the run (this process, and the workers and servers it starts later) goes to a
    real DNS server on 127.0.0.1 that the tests control, never to the machine's resolver."""
    from django.conf import settings

    from tests.dnsserver import ChallengeDNSServer

    server = ChallengeDNSServer().start()
    os.environ["HOSTNAME_DNS_RESOLVERS"] = server.address
    settings.HOSTNAME_DNS_RESOLVERS = [server.address]
    yield server
    server.stop()


@pytest.fixture
def dns_zone(dns_server):
    """The suite's DNS zone, empty at the start of the test: publish TXT records, make names fail."""
    zone = dns_server.zone
    for records in (zone.txt, zone.addresses, zone.failing, zone.silent):
        records.clear()
    yield zone
    for records in (zone.txt, zone.addresses, zone.failing, zone.silent):
        records.clear()


# --- per-address rate limits: every test's client is 127.0.0.1 -----------------------------------
@pytest.fixture(autouse=True)
def _fresh_address_rate_limits():
    """Each test starts with no django-ratelimit counts: they are kept per client address, and every test's
    client is 127.0.0.1, so otherwise the counts of earlier tests carry over (the browser tests log an
    operator in once each, and a fast machine ran more than ADMIN_LOGIN_RATE of them in one minute)."""
    from django.conf import settings
    from django.core.cache import caches

    cache = caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]
    prefix = getattr(settings, "RATELIMIT_CACHE_PREFIX", "rl:")
    try:
        if hasattr(cache, "delete_pattern"):
            cache.delete_pattern(f"{prefix}*", itersize=1000)
        else:
            cache.clear()  # local memory: this process's own cache
    except Exception:  # noqa: BLE001, S110 - a test that stopped Redis: no counts can be read either
        pass


# --- read replicas (dbrouting/router.py) ------------------------------------------------
@pytest.fixture(autouse=True)
def _reads_from_primary(request):
    """Test code reads what it just wrote: its queries (and requests it makes through the test client)
    use the primary. Tests of the replica router opt out with @pytest.mark.replica_routing."""
    if request.node.get_closest_marker("replica_routing"):
        yield
        return
    from dbrouting.routing import use_primary

    with use_primary():
        yield


@pytest.fixture(scope="session", autouse=True)
def _replica_monitor_stopped(django_db_setup):
    """The replica monitor polls over its own connections; close them before the test database is dropped."""
    yield
    from dbrouting.monitor import get_monitor

    get_monitor().stop()


def _test_database_env() -> dict:
    """The environment a subprocess needs to see the test database (not the development one)."""
    from django.db import connections

    env = dict(os.environ)
    test_name = connections["default"].settings_dict["NAME"]
    for variable in ("DATABASE_URL", "DATABASE_REPLICA_URLS"):
        if env.get(variable):
            env[variable] = ",".join(url.rsplit("/", 1)[0] + "/" + test_name for url in env[variable].split(","))
    env["DJANGO_SETTINGS_MODULE"] = "platform_site.settings"
    return env


@pytest.fixture(scope="session")
def test_database_env(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        return _test_database_env()


@pytest.fixture(scope="session")
def celery_worker(test_database_env, tmp_path_factory):
    """A real Celery worker process consuming every queue, on the test database.

    It sends webhooks as the webhooks tests' worker does (tests/webhooks/conftest.py), slow-lane lock
    included: the slow lane claims every due delivery in the database, whichever queue woke it, so a worker
    configured otherwise would take the webhooks tests' retries and fail them (refused by its SSRF guard)."""
    from platform_site.celery import QUEUES, app
    from tests.webhooks.conftest import WEBHOOKS_TEST_ENV
    from tests.workers import CeleryWorker

    app.control.purge()
    env = {**test_database_env, **WEBHOOKS_TEST_ENV}
    worker = CeleryWorker(env, tmp_path_factory.mktemp("celery") / "worker.log", queues=QUEUES,
                          hostname=f"test-{os.getpid()}@localhost", concurrency=2)  # fmt: skip
    worker.start()
    yield worker.process
    worker.stop()


@pytest.fixture(scope="session", autouse=True)
def collected_static():
    """Pages use the versioned (manifest) static files, as in production: collect them once."""
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture
def stopped():
    """stopped("replica") stops a service of the local stack; every stopped service is started again,
    and what its restart invalidates is reset: database connections (a PostgreSQL node), the pgBackRest
    S3 stanza (moto keeps objects in memory)."""
    from tests.helpers import stack

    names = []

    def stop(name: str):
        names.append(name)
        stack("stop", name)

    yield stop
    for name in names:
        stack("start", name)
    if {"primary", "replica"} & set(names):
        from django.db import connections

        for alias in connections:
            # Their server restarted: the open connections are dead (a request would health-check them).
            connections[alias].close()
    if "moto" in names:
        from backups.engines import get_engine, reset_engines

        reset_engines()
        get_engine("pgbackrest").setup()
