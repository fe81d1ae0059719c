"""Fault injection on the real primary/replica pair of deploy/local (lag, stop, start)."""

import psycopg
import pytest
from django.conf import settings

from tests.helpers import wait_for


def server_sql(alias: str, sql: str, params: tuple = ()):
    """Run SQL on the server behind a database alias (its own connection, not the one under test)."""
    config = settings.DATABASES[alias]
    with psycopg.connect(
        host=config["HOST"], port=config["PORT"], user=config["USER"], dbname="postgres", autocommit=True
    ) as connection:
        cursor = connection.execute(sql, params)
        return cursor.fetchall() if cursor.description else None


def ran_on(alias: str, marker: str) -> bool:
    """Whether the server behind `alias` ran a query containing `marker` over the router's connection
    for that alias (told apart by application_name, which settings set per alias)."""
    rows = server_sql(
        alias,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND query LIKE %s",
        ("platform-primary" if alias == "default" else f"platform-{alias}", f"%{marker}%"),
    )
    return rows[0][0] > 0


@pytest.fixture
def monitor():
    from dbrouting.monitor import get_monitor

    monitor = get_monitor()

    def replica(alias="replica_1"):
        return monitor.refresh().replicas[alias]

    monitor.replica = replica
    return monitor


@pytest.fixture
def caught_up(monitor):
    """Wait until the replica has replayed everything the primary wrote so far."""

    def wait():
        wait_for(lambda: (status := monitor.replica()) and status.in_rotation and status.lag_bytes == 0, timeout=20)

    return wait


@pytest.fixture
def replica_delay(caught_up):
    """Make the replica apply WAL `seconds` late (recovery_min_apply_delay); restored afterwards."""

    def set_delay(seconds: int):
        caught_up()
        server_sql("replica_1", f"ALTER SYSTEM SET recovery_min_apply_delay = '{int(seconds)}s'")
        server_sql("replica_1", "SELECT pg_reload_conf()")

    yield set_delay
    server_sql("replica_1", "ALTER SYSTEM RESET recovery_min_apply_delay")
    server_sql("replica_1", "SELECT pg_reload_conf()")
    caught_up()
