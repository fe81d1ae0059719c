"""deploy/compose: PostgreSQL 16 primary + streaming replica on the official image.

Docker is not available here, so the compose file is checked statically, and the two scripts it runs are
run for real against the local stack's primary: the primary's init script creates the replication role
and slot, and the replica's entrypoint clones the primary and comes up as a streaming hot standby.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import yaml
from django.conf import settings
from psycopg import sql

from tests.conftest import REPO_ROOT
from tests.helpers import wait_for

COMPOSE = REPO_ROOT / "deploy" / "compose" / "docker-compose.yml"
SCRIPTS = REPO_ROOT / "deploy" / "postgres"


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_defines_an_official_postgres16_primary_and_streaming_replica():
    services = _compose()["services"]
    primary, replica = services["postgres-primary"], services["postgres-replica"]
    dockerfile = (REPO_ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    for service in (primary, replica):
        # The database host image: the official postgres:16 plus pgBackRest and the platform.
        assert service["build"]["target"] == "postgres"
        assert (COMPOSE.parent / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == (
            REPO_ROOT / "deploy" / "docker" / "Dockerfile"
        )
        assert "FROM postgres:16-bookworm AS postgres" in dockerfile
        # Variables only Bitnami's image understands would silently do nothing here.
        assert not any("REPLICATION_MODE" in name for name in service.get("environment", {}))

    assert "wal_level=replica" in primary["command"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in primary["volumes"]}
    init_script = mounts["/docker-entrypoint-initdb.d/10-replication.sh"]
    assert (COMPOSE.parent / init_script).resolve() == SCRIPTS / "primary-init.sh"

    assert replica["depends_on"]["postgres-primary"]["condition"] == "service_healthy"
    replica_mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in replica["volumes"]}
    entrypoint = replica_mounts[replica["entrypoint"][-1]]
    assert (COMPOSE.parent / entrypoint).resolve() == SCRIPTS / "replica-entrypoint.sh"
    assert replica["environment"]["PRIMARY_HOST"] == "postgres-primary"
    assert replica["environment"]["REPLICATION_SLOT"] in primary["environment"]["REPLICATION_SLOTS"].split()
    assert replica["environment"]["REPLICATION_USER"] == primary["environment"]["REPLICATION_USER"]
    assert "pg_is_in_recovery" in replica["healthcheck"]["test"][-1]


@pytest.mark.parametrize("script", ["primary-init.sh", "replica-entrypoint.sh"])
def test_scripts_are_valid_bash(script):
    subprocess.run(["bash", "-n", str(SCRIPTS / script)], check=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def test_scripts_really_replicate(tmp_path):
    config = settings.DATABASES["default"]
    primary = {"host": config["HOST"], "port": config["PORT"], "user": config["USER"], "dbname": "postgres"}
    bindir = os.environ["PG_BINDIR"]
    suffix = uuid.uuid4().hex[:8]
    role, slot = f"replicator_{suffix}", f"compose_test_{suffix}"
    hba_dir = tmp_path / "primary"
    hba_dir.mkdir()
    (hba_dir / "pg_hba.conf").write_text("")
    env = {
        **os.environ,
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "PGHOST": primary["host"],
        "PGPORT": str(primary["port"]),
        "POSTGRES_USER": primary["user"],
        "POSTGRES_DB": "postgres",
        "PGDATA": str(hba_dir),
        "REPLICATION_USER": role,
        "REPLICATION_PASSWORD": "replication-secret",
        "REPLICATION_SLOTS": slot,
        "ARCHIVE_CONFIG": "/etc/postgresql/archive.conf",
    }
    subprocess.run(["bash", str(SCRIPTS / "primary-init.sh")], env=env, check=True, capture_output=True)
    assert f"host replication {role} all scram-sha-256" in (hba_dir / "pg_hba.conf").read_text()
    # WAL archiving into pgBackRest is switched on by including archive.conf.
    assert "include_if_exists = '/etc/postgresql/archive.conf'" in (hba_dir / "postgresql.conf").read_text()

    # The replica's data must be reachable by the postgres OS user (not under a private tmp_path).
    state = Path(tempfile.mkdtemp(prefix="compose-replica-", dir="/var/tmp"))
    if os.geteuid() == 0:
        postgres_user = pwd.getpwnam("postgres")
        os.chown(state, postgres_user.pw_uid, postgres_user.pw_gid)
    port = _free_port()
    replica_env = {
        "PATH": env["PATH"],
        "PRIMARY_HOST": primary["host"],
        "PRIMARY_PORT": str(primary["port"]),
        "REPLICATION_USER": role,
        "REPLICATION_PASSWORD": "replication-secret",
        "REPLICATION_SLOT": slot,
        "PGDATA": str(state / "data"),
    }
    command = _as_postgres(
        ["env", *(f"{key}={value}" for key, value in replica_env.items()),
         "bash", str(SCRIPTS / "replica-entrypoint.sh"),
         "-c", f"port={port}", "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={state}",
         "-c", "archive_mode=off", "-c", "cluster_name=compose-test-replica"]
    )  # fmt: skip
    log = open(state / "replica.log", "wb")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd="/", start_new_session=True)
    try:

        def standby_ready():
            if process.poll() is not None:
                raise AssertionError((state / "replica.log").read_text()[-2000:])
            try:
                with psycopg.connect(host="127.0.0.1", port=port, user=primary["user"], dbname="postgres") as c:
                    return c.execute("SELECT pg_is_in_recovery()").fetchone()[0]
            except psycopg.OperationalError:
                return False

        wait_for(standby_ready, timeout=60, interval=0.2)
        table = sql.Identifier(f"compose_probe_{suffix}")
        with psycopg.connect(**primary, autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE TABLE {} (value text)").format(table))
            connection.execute(sql.SQL("INSERT INTO {} VALUES ('streamed')").format(table))
            streaming = connection.execute(
                "SELECT state FROM pg_stat_replication WHERE application_name = %s", (slot,)
            ).fetchone()
        assert streaming == ("streaming",)

        def replicated():
            with psycopg.connect(host="127.0.0.1", port=port, user=primary["user"], dbname="postgres") as c:
                exists = c.execute("SELECT to_regclass(%s) IS NOT NULL", (f"compose_probe_{suffix}",)).fetchone()[0]
                return exists and c.execute(sql.SQL("SELECT value FROM {}").format(table)).fetchone() == ("streamed",)

        wait_for(replicated, timeout=20, interval=0.1)
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
        log.close()
        with psycopg.connect(**primary, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(f"compose_probe_{suffix}")))
            # The slot is released once the walsender exits.
            deadline = time.monotonic() + 10
            while (
                connection.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
                == (True,)
                and time.monotonic() < deadline
            ):
                time.sleep(0.1)
            connection.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s", (slot,)
            )
            connection.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        shutil.rmtree(state, ignore_errors=True)
