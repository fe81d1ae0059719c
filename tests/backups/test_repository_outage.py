"""One repository's outage never stops the other: stunnel or moto (repo2, S3) stopped for real, repo1
(posix) keeps receiving WAL and backups, the outage is reported per repository within one check, every
call to the unreachable repository fails fast with its name, and none of its backups is marked expired."""

import time

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from prometheus_client import REGISTRY

from backups import services
from backups.engines.base import RepositoryUnreachable
from backups.engines.pgbackrest_output import segment_number
from backups.models import BackupRun
from tests.helpers import stack, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _switch_wal() -> str:
    """Write something and switch to a new WAL segment; returns the segment that was switched out."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE IF NOT EXISTS wal_filler (x int); INSERT INTO wal_filler VALUES (1)")
        cursor.execute("SELECT pg_walfile_name(pg_switch_wal())")
        return cursor.fetchone()[0]


def _archived_in(engine, repo: int, segment: str) -> bool:
    newest = engine.repo_state(repo=repo).archive_max
    return bool(newest) and segment_number(newest) >= segment_number(segment)


def _repo2_unreachable(detail: str) -> str:
    port = settings.BACKUP_ENGINES["pgbackrest"]["OPTIONS"]["repos"][1]["storage_port"]
    return f"repository 2 (S3 at localhost:{port}, bucket {settings.S3_BUCKET}) unreachable: {detail}"


def _gauge(name: str, repo: int) -> float | None:
    return REGISTRY.get_sample_value(name, {"repo": str(repo)})


def test_stunnel_down_repo1_stays_current_and_repo2_is_reported(base_full_backup, engine, stopped):
    repo2_set = services.backup_run(kind="full", engine=engine, repo=2)
    expected = _repo2_unreachable("connection refused")
    stopped("stunnel")

    # WAL keeps reaching repo1 (asynchronous archive-push) while repo2 cannot be reached: not only the
    # first segment after the outage (a synchronous push gets repo1 one segment ahead, then stops).
    _switch_wal()
    segment = _switch_wal()
    wait_for(lambda: _archived_in(engine, 1, segment), timeout=120, interval=1)
    status = services.wal_archive_check(engine=engine)
    repo1, repo2 = status["repos"]
    assert repo1["reachable"] and repo1["ok"], repo1
    assert (repo2["reachable"], repo2["ok"], repo2["error"]) == (False, False, expected)
    assert status["ok"] is False
    assert (_gauge("platform_backup_repo_up", 1), _gauge("platform_backup_repo_up", 2)) == (1, 0)
    assert (_gauge("platform_wal_archive_repo_ok", 1), _gauge("platform_wal_archive_repo_ok", 2)) == (1, 0)
    assert REGISTRY.get_sample_value("platform_wal_archive_check_timestamp_seconds") > time.time() - 60
    # What repo2 cannot take piles up in pg_wal, and is measured.
    assert status["wal_ready_segments"] >= 1 and status["wal_ready_bytes"] >= 16 * 1024 * 1024
    assert status["pg_wal_bytes"] >= status["wal_ready_bytes"]

    # A full backup into repo1 succeeds during the outage: its WAL reaches repo1.
    assert services.backup_run(kind="full", engine=engine, repo=1).status == BackupRun.Status.SUCCEEDED

    # Into repo2: fails at once, by name; the failed run records the repository it targeted.
    with pytest.raises(RepositoryUnreachable) as raised:
        services.backup_run(kind="full", engine=engine, repo=2)
    assert raised.value.message == expected
    failed = BackupRun.objects.get(status=BackupRun.Status.FAILED)
    assert (failed.repo, failed.error, failed.kind) == (2, expected, "full")

    # Listing reads repo1, leaves repo2's records as they were (never "expired"), and says why.
    result = services.backup_sync(engine=engine)
    assert result.errors == {2: expected}
    assert BackupRun.objects.get(pk=repo2_set.pk).status == BackupRun.Status.SUCCEEDED
    with pytest.raises(CommandError, match="repository 2 .* unreachable: connection refused .*shown as last recorded"):
        call_command("backup", "list")
    assert BackupRun.objects.get(pk=repo2_set.pk).status == BackupRun.Status.SUCCEEDED
    with pytest.raises(CommandError, match="WAL archiving is failing or behind: repository 2"):
        call_command("backup", "wal-check")

    # Back: the WAL that waited in pg_wal reaches repo2, and both repositories report ok.
    stack("start", "stunnel")
    waiting = _switch_wal()
    wait_for(lambda: _archived_in(engine, 2, waiting), timeout=180, interval=2)
    recovered = wait_for(lambda: (s := services.wal_archive_check(engine=engine))["ok"] and s, timeout=120, interval=2)
    assert [repo["ok"] for repo in recovered["repos"]] == [True, True]
    assert _gauge("platform_wal_archive_repo_ok", 2) == 1


def test_moto_down_is_named_and_a_wiped_repository_gets_its_stanza_back(base_full_backup, engine, stopped):
    repo2_set = services.backup_run(kind="full", engine=engine, repo=2)
    stopped("moto")
    # stunnel still accepts the connection but has nothing behind it: no TLS riddle, one plain reason.
    with pytest.raises(RepositoryUnreachable) as raised:
        engine.list_backups(repo=2)
    assert raised.value.message == _repo2_unreachable(
        "the connection was closed without an answer (the service behind the endpoint is down)"
    )

    stack("start", "moto")  # moto keeps S3 in memory: repo2 comes back empty
    result = services.backup_sync(engine=engine)
    assert "stanza platform: missing stanza path" in result.errors[2]
    assert BackupRun.objects.get(pk=repo2_set.pk).status == BackupRun.Status.SUCCEEDED  # unknown, not expired

    status = services.wal_archive_check(engine=engine)
    assert status["actions"] == [
        f"{engine.repository(2).label}: stanza platform was missing (the repository was empty): created"
    ]
    assert status["repos"][1]["reachable"] and status["repos"][1]["stanza"] in ("ok", "no valid backups")
    # Read successfully now, repo2 no longer holds the set: that, and only that, expires it.
    assert services.backup_sync(engine=engine).errors == {}
    assert BackupRun.objects.get(pk=repo2_set.pk).status == BackupRun.Status.EXPIRED
    segment = _switch_wal()
    wait_for(lambda: _archived_in(engine, 2, segment), timeout=180, interval=2)


def test_setup_reports_each_repository_and_fails_clearly_when_one_is_unreachable(engine, stopped, capsys):
    call_command("backup", "setup")
    out = capsys.readouterr().out
    assert f"{engine.repository(1).label}: stanza platform ok" in out
    assert "pgbackrest check passed" in out
    stopped("stunnel")
    with pytest.raises(CommandError, match="repository 2 .* unreachable: connection refused"):
        call_command("backup", "setup")
