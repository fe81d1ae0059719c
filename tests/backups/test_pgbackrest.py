"""The pgBackRest engine against the stack's real PostgreSQL, posix repository and S3 (moto behind stunnel).

Just over ~400 lines on purpose: it mirrors backups/engines/pgbackrest.py, one test a behaviour of a real
pgBackRest command (backup, restore, drill, expire, verify); the outage, lease and command tests have
modules of their own."""

import contextlib
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from django.conf import settings
from django.db import connection
from prometheus_client import REGISTRY

from backups import services
from backups.engines.base import BackupError
from backups.engines.clusters import free_port, running_postmaster
from backups.engines.pgbackrest_output import parse_info
from backups.locking import BACKUP_LOCK_KEY, BackupInProgress
from backups.models import BackupRun, RestoreVerification
from tenants import services as tenant_services
from tests.helpers import wait_for

from .conftest import engine_with

pytestmark = pytest.mark.django_db(transaction=True)


def test_config_is_generated_from_settings(engine, scratch_dir):
    custom = engine_with(
        config_path=os.path.join(scratch_dir, "pgbackrest.conf"),
        repos=[
            {
                "key": 1,
                "type": "s3",
                "path": "/backups",
                "s3_bucket": "bucket-a",
                "s3_endpoint": "s3.example.test",
                "s3_region": "eu-west-1",
                "s3_key": "AKIAEXAMPLE",
                "s3_key_secret": "secret-value",
                "cipher_pass": "cipher-secret",
            }
        ],
        retention_full_days=30,
    )
    assert custom.write_config() is True
    assert custom.write_config() is False  # unchanged: not rewritten
    text = open(custom.config_path).read()
    for line in [
        "repo1-type=s3",
        "repo1-s3-bucket=bucket-a",
        "repo1-s3-endpoint=s3.example.test",
        "repo1-s3-region=eu-west-1",
        "repo1-retention-full-type=time",
        "repo1-retention-full=30",
        "repo1-bundle=y",
        "repo1-cipher-type=aes-256-cbc",
        "compress-type=lz4",
        f"[{engine.stanza}]",
        f"pg1-path={engine.pg_data}",
    ]:
        assert line in text.splitlines(), line
    assert oct(os.stat(custom.config_path).st_mode & 0o777) == "0o640"


def test_parse_info_reads_every_field():
    text = """[{"name": "platform", "backup": [{"label": "20260101-010101F", "type": "full",
      "timestamp": {"start": 1767229261, "stop": 1767229265}, "info": {"size": 100, "delta": 100,
      "repository": {"size": 40, "delta": 40}}, "archive": {"start": "000000010000000000000002",
      "stop": "000000010000000000000003"}, "lsn": {"start": "0/2000028", "stop": "0/3000100"},
      "database": {"id": 1, "repo-key": 2}, "error": false, "prior": null, "reference": null}]},
      {"name": "other", "backup": []}]"""
    [info] = parse_info(text, stanza="platform")
    assert (info.label, info.kind, info.size_bytes, info.repo_size_bytes, info.repo) == (
        "20260101-010101F",
        "full",
        100,
        40,
        2,
    )
    assert info.started_at == datetime.fromtimestamp(1767229261, tz=UTC)
    assert (info.wal_start, info.wal_stop, info.lsn_start, info.lsn_stop) == (
        "000000010000000000000002",
        "000000010000000000000003",
        "0/2000028",
        "0/3000100",
    )
    with pytest.raises(BackupError, match="invalid JSON"):
        parse_info("not json", stanza="platform")


def _db_now() -> datetime:
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0]


def test_full_writes_incremental_then_pitr_between_two_writes(base_full_backup, engine, scratch_dir):
    tenant_services.tenant_create(name="Before target", slug="pitr-before")
    time.sleep(0.3)
    target = _db_now().astimezone(UTC)
    time.sleep(0.3)
    tenant_services.tenant_create(name="After target", slug="pitr-after")

    run = services.backup_run(kind="incr", engine=engine)
    assert run.status == BackupRun.Status.SUCCEEDED
    assert run.kind == "incr" and run.label.startswith(base_full_backup.label + "_")
    assert run.size_bytes > 0 and run.repo_size_bytes > 0 and run.wal_start and run.lsn_stop
    assert run.row_counts["after"]["tenants.tenant"] == run.row_counts["before"]["tenants.tenant"] == 2

    data_dir = os.path.join(scratch_dir, "pitr")
    port = free_port()
    target_text = target.strftime("%Y-%m-%d %H:%M:%S.%f+00")
    cluster = services.backup_restore(to=data_dir, port=port, target_time=target_text, engine=engine)
    try:
        assert cluster.port == port and cluster.recovered_lsn
        with contextlib.closing(cluster.connect()) as restored:
            with restored.cursor() as cursor:
                cursor.execute("SELECT slug FROM tenants_tenant ORDER BY slug")
                slugs = [row[0] for row in cursor.fetchall()]
                cursor.execute("SHOW archive_mode")
                archive_mode = cursor.fetchone()[0]
        assert slugs == ["pitr-before"]
        assert archive_mode == "off"
        # The primary is untouched and still has both rows.
        assert sorted(tenant_services.Tenant.objects.values_list("slug", flat=True)) == ["pitr-after", "pitr-before"]
    finally:
        engine.stop_cluster(data_dir)


def test_a_restore_elsewhere_leaves_the_primarys_archive_spool_alone(base_full_backup, engine, scratch_dir):
    """pgBackRest's restore empties the stanza's archive spool, meant for the cluster it restores. With the
    primary's spool, a drill (which restores right after its segment is pushed) deleted the acknowledgement
    the primary's archive_command was waiting for: WAL archiving stood still for archive-timeout (60 s),
    and a backup or check waiting for WAL with it."""
    point = engine.recovery_point(name=f"spool-{int(time.time())}")
    acknowledged = Path(engine.spool_path, "archive", engine.stanza, "out", f"{point['wal']}.ok")
    wait_for(acknowledged.exists, timeout=30)
    data_dir = os.path.join(scratch_dir, "copy")
    try:
        engine.restore(to=data_dir, port=free_port(), immediate=True)
    finally:
        engine.stop_cluster(data_dir)
    assert acknowledged.exists()


def test_restore_refuses_the_primary_a_used_directory_and_a_busy_port(engine, scratch_dir):
    with pytest.raises(BackupError, match="primary's data directory"):
        services.backup_restore(to=engine.pg_data, port=free_port(), engine=engine)
    busy = os.path.join(scratch_dir, "busy")
    os.makedirs(busy)
    open(os.path.join(busy, "file"), "w").close()
    with pytest.raises(BackupError, match="not empty"):
        services.backup_restore(to=busy, port=free_port(), engine=engine)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with pytest.raises(BackupError, match="in use"):
            services.backup_restore(to=os.path.join(scratch_dir, "new"), port=listener.getsockname()[1], engine=engine)
    with pytest.raises(Exception, match="YYYY-MM-DD HH:MM:SS"):
        services.backup_restore(to=os.path.join(scratch_dir, "new"), port=free_port(), target_time="yesterday")


def test_restore_force_checks_for_a_running_postgresql_and_touches_nothing_it_refuses(engine, scratch_dir):
    primary = engine.pg_data
    # Only ever against a running primary: were it stopped, this --force restore would really overwrite it.
    assert running_postmaster(Path(primary)) > 0, "the stack's primary is not running"
    before = os.stat(primary)
    # --force over the running primary: refused by the restore's own check, before pgBackRest runs.
    with pytest.raises(BackupError, match=r"PostgreSQL \(pid \d+\) is running on .*stop it before"):
        services.backup_restore(to=primary, port=free_port(), force=True, engine=engine)
    # --force over a folder that is not a data directory: refused, its owner and mode unchanged.
    folder = os.path.join(scratch_dir, "not-pgdata")
    os.makedirs(folder)
    open(os.path.join(folder, "notes.txt"), "w").close()
    os.chmod(folder, 0o751)  # noqa: S103 - a mode the restore would change
    with pytest.raises(BackupError, match="not a PostgreSQL data directory"):
        services.backup_restore(to=folder, port=free_port(), force=True, engine=engine)
    after = os.stat(primary)
    assert (after.st_uid, after.st_gid, after.st_mode) == (before.st_uid, before.st_gid, before.st_mode)
    assert oct(os.stat(folder).st_mode & 0o777) == "0o751" and os.stat(folder).st_uid == os.getuid()
    # A stale postmaster.pid (no such process) is not a running server.
    stale = os.path.join(scratch_dir, "stale")
    os.makedirs(stale)
    open(os.path.join(stale, "postmaster.pid"), "w").write("999999999\n")
    assert running_postmaster(Path(stale)) is None


def test_restore_drill_replays_wal_to_a_recent_point_from_the_backups_repository(base_full_backup, engine):
    tenant_services.tenant_create(name="Drill", slug="drill")
    run = services.backup_run(kind="incr", engine=engine)
    # Written after the backup: only WAL replay brings it into the drill's copy.
    tenant_services.tenant_create(name="After backup", slug="after-backup")
    verification = services.backup_verify(engine=engine)
    assert verification.status == RestoreVerification.Status.SUCCEEDED, verification.error
    assert verification.backup_run == run and verification.repo == run.repo == 1
    assert verification.trigger == "command" and not verification.scratch_path
    assert verification.tables_checked >= 4
    details = verification.details
    assert details["key_tables"]["tenants.tenant"]["restored"] == 2
    assert details["repository_verify"].startswith("stanza: platform\nstatus: ok")
    target = details["recovery_target"]
    assert target["name"].startswith(f"drill-{verification.pk}-") and target["repo"] == 1
    assert services._lsn(details["recovered_lsn"]) >= services._lsn(target["lsn"])
    assert not list(Path(settings.BACKUP_SCRATCH_DIR).glob(f"restore-drill-{services._scratch_tag()}-*"))


def test_drill_problems_compare_restored_counts_with_the_recorded_ones():
    details = {"tables": {"tenants_tenant": 1}, "key_tables": {}}
    problems = services.drill_problems(details, {"before": {"tenants.tenant": 5}, "after": {"tenants.tenant": 6}})
    assert problems == ["tenants_tenant: 1 rows, expected 5..6"]
    assert details["key_tables"]["tenants.tenant"] == {"restored": 1, "expected_between": [5, 6]}
    assert services.drill_problems(details, {"before": {"tenants.tenant": 0}, "after": {"tenants.tenant": 1}}) == []


def test_drill_catches_a_corrupted_repository_file(base_full_backup, engine):
    run = services.backup_run(kind="full", engine=engine)
    bundle = sorted(Path(engine.repos[0]["path"], "backup", engine.stanza, run.label, "bundle").iterdir())[0]
    original = bundle.read_bytes()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0xFF
    bundle.write_bytes(bytes(damaged))
    try:
        verification = services.backup_verify(engine=engine, backup_run=run)
    finally:
        bundle.write_bytes(original)
    assert verification.status == RestoreVerification.Status.FAILED
    assert "pgbackrest verify found damaged files" in verification.error
    assert f"backup: {run.label}, status: invalid" in verification.error and "checksum invalid: 1" in verification.error


def test_a_missing_scratch_folder_is_created_and_an_impossible_one_is_one_clear_error(
    base_full_backup, engine, settings, scratch_dir
):
    settings.BACKUP_SCRATCH_DIR = os.path.join(scratch_dir, "not", "there", "yet")
    run = services.backup_run(kind="incr", engine=engine)
    assert services.backup_verify(engine=engine, backup_run=run).status == RestoreVerification.Status.SUCCEEDED
    assert os.path.isdir(settings.BACKUP_SCRATCH_DIR)
    blocker = os.path.join(scratch_dir, "a-file")
    open(blocker, "w").close()
    settings.BACKUP_SCRATCH_DIR = os.path.join(blocker, "scratch")
    failed = services.backup_verify(engine=engine, backup_run=run)
    assert failed.status == RestoreVerification.Status.FAILED
    assert failed.error.startswith(f"the scratch folder BACKUP_SCRATCH_DIR={blocker}/scratch does not exist and cannot")


def test_second_backup_at_once_is_refused(engine, raw_connection):
    with raw_connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [BACKUP_LOCK_KEY])
    try:
        with pytest.raises(BackupInProgress):
            services.backup_run(kind="full", engine=engine)
        assert not BackupRun.objects.exists()
    finally:
        with raw_connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [BACKUP_LOCK_KEY])


def test_full_backup_into_the_s3_repository(base_full_backup, engine):
    s3_engine = engine_with(backup_repo=2)
    run = services.backup_run(kind="full", engine=s3_engine)
    assert run.status == BackupRun.Status.SUCCEEDED and run.repo == 2 and run.repo_size_bytes > 0
    s3 = boto3.client("s3", endpoint_url=settings.S3_ENDPOINT_URL, region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=settings.S3_BUCKET, Prefix="pgbackrest/")["Contents"]]
    assert any(run.label in key for key in keys)


def test_s3_unavailable_fails_the_backup_clearly(scratch_dir, caplog):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    broken = engine_with(
        config_path=os.path.join(scratch_dir, "conf", "pgbackrest.conf"),
        io_timeout=1,  # pgBackRest retries a refused connection for about 8 x io-timeout
        repos=[
            {
                "key": 1,
                "type": "s3",
                "path": "/pgbackrest",
                "s3_bucket": settings.S3_BUCKET,
                "s3_endpoint": "localhost",
                "s3_region": "us-east-1",
                "s3_uri_style": "path",
                "storage_port": dead_port,
                "storage_verify_tls": False,
                "s3_key": "testing",
                "s3_key_secret": "not-to-be-logged",
            }
        ],
    )
    failures_before = REGISTRY.get_sample_value("platform_backup_runs_total", {"kind": "full", "status": "failed"}) or 0
    with pytest.raises(BackupError) as raised:
        services.backup_run(kind="full", engine=broken)
    failures = REGISTRY.get_sample_value("platform_backup_runs_total", {"kind": "full", "status": "failed"})
    assert failures == failures_before + 1
    expected = (
        f"repository 1 (S3 at localhost:{dead_port}, bucket {settings.S3_BUCKET}) unreachable: connection refused"
    )
    assert raised.value.message == expected and raised.value.code == "repo_unreachable"
    assert "backup failed" in caplog.text and expected in caplog.text
    run = BackupRun.objects.get()
    assert run.status == BackupRun.Status.FAILED and not run.label and run.repo == 1
    assert run.error == expected and run.finished_at and run.lease_expires_at
    assert not BackupRun.objects.filter(status=BackupRun.Status.SUCCEEDED).exists()
    assert "not-to-be-logged" not in caplog.text


def _switch_wal() -> None:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE IF NOT EXISTS wal_filler (x int); INSERT INTO wal_filler VALUES (1)")
        cursor.execute("SELECT pg_switch_wal()")


def test_wal_archive_check_alerts_when_archiving_fails_and_recovers(engine, settings, caplog):
    status = services.wal_archive_check(engine=engine)
    assert status["ok"] and not status["failing"] and status["archived_count"] > 0

    # Break archiving for real: the postgres user can no longer write into repo1's WAL archive.
    archive_dir = os.path.join(engine.repos[0]["path"], "archive", engine.stanza)
    mode = os.stat(archive_dir).st_mode & 0o777
    os.chmod(archive_dir, 0)
    try:
        _switch_wal()
        failing = wait_for(lambda: (s := services.wal_archive_check(engine=engine))["failing"] and s, timeout=60)
        assert failing["ok"] is False and failing["last_failed_wal"]
        assert "WAL archiving needs attention: failing=True" in caplog.text
        assert REGISTRY.get_sample_value("platform_wal_archive_ok") == 0
    finally:
        os.chmod(archive_dir, mode)  # noqa: S103 - restores the stack's own mode
    _switch_wal()  # a new segment wakes the archiver, which retries the failed one first
    wait_for(lambda: services.wal_archive_check(engine=engine)["ok"], timeout=90)
    assert REGISTRY.get_sample_value("platform_wal_archive_ok") == 1

    settings.BACKUP_WAL_MAX_SEGMENTS_BEHIND = -1  # falling behind is an alert too
    assert services.wal_archive_check(engine=engine)["ok"] is False


def test_expiry_dry_run_then_real(base_full_backup, engine):
    services.backup_run(kind="full", engine=engine)
    labels_before = [b.label for b in engine.list_backups(repo=1)]
    assert base_full_backup.label in labels_before

    [outcome] = services.backup_expire(dry_run=True, keep_full=1, engine=engine, repo=1)
    assert "[DRY-RUN]" in outcome.output and base_full_backup.label in outcome.output and not outcome.error
    assert [b.label for b in engine.list_backups(repo=1)] == labels_before

    services.backup_sync(engine=engine)
    services.backup_expire(keep_full=1, engine=engine, repo=1)
    remaining = [b.label for b in engine.list_backups(repo=1)]
    assert base_full_backup.label not in remaining and len(remaining) == 1
    expired = BackupRun.objects.get(label=base_full_backup.label, repo=1)
    assert expired.status == BackupRun.Status.EXPIRED


def test_each_repository_has_its_own_retention(engine, scratch_dir):
    custom = engine_with(
        config_path=os.path.join(scratch_dir, "pgbackrest.conf"),
        repos=[
            {**engine.repos[0], "retention_full": 7, "retention_full_type": "time"},
            {**engine.repos[1], "retention_full": 3, "retention_full_type": "count"},
        ],
    )
    lines = custom.render_config().splitlines()
    assert {"repo1-retention-full-type=time", "repo1-retention-full=7"} <= set(lines)
    assert {"repo2-retention-full-type=count", "repo2-retention-full=3"} <= set(lines)
    # Asynchronous archive-push with its own short io-timeout, and bounded waits for every command.
    section = lines[lines.index("[global:archive-push]") :]
    assert {"archive-async=y", "io-timeout=3"} <= set(section[: section.index("")])
    assert {"io-timeout=20", "db-timeout=600", "protocol-timeout=630", "archive-timeout=60"} <= set(lines)


def test_expire_goes_through_every_repository(base_full_backup, engine):
    outcomes = services.backup_expire(dry_run=True, engine=engine)
    assert [outcome.repository.key for outcome in outcomes] == [1, 2]
    assert all(not outcome.error for outcome in outcomes), outcomes


def test_the_drill_restores_from_the_repository_its_backup_is_in(base_full_backup, engine):
    run = services.backup_run(kind="full", engine=engine, repo=2)
    assert run.label not in {b.label for b in engine.list_backups(repo=1)}  # only repo2 holds it
    # pgBackRest's verify reads every set in the repository, one ranged GET per file (~20 ms each through
    # stunnel and moto, ~1750 files a set): earlier tests' sets in repo2 are not this test's subject.
    services.backup_expire(keep_full=1, engine=engine, repo=2)
    assert [b.label for b in engine.list_backups(repo=2)] == [run.label]
    verification = services.backup_verify(engine=engine, backup_run=run)
    assert verification.status == RestoreVerification.Status.SUCCEEDED, verification.error
    assert verification.repo == 2 and verification.details["recovery_target"]["repo"] == 2
    assert verification.details["repository_verify"].startswith("stanza: platform\nstatus: ok")


def test_the_wal_check_task_skips_an_engine_without_wal(settings, tmp_path):
    from backups import tasks

    settings.BACKUP_ENGINE = "sqlite"
    settings.BACKUP_ENGINES = {
        **settings.BACKUP_ENGINES,
        "sqlite": {"BACKEND": "backups.engines.sqlite.SQLiteEngine", "OPTIONS": {"directory": str(tmp_path)}},
    }
    assert tasks.wal_archive_check_task.apply().get()["skipped"].startswith("the backup engine archives no WAL")
