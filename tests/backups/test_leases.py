"""No record stays "running": runs hold a lease renewed while they work; a process killed for real (a
backup, a drill) or a primary stopped mid-backup leaves a row the reconcile task fails, with the reason,
and a drill's scratch cluster and folder are reaped."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.utils import timezone

from backups import services
from backups.engines.clusters import running_postmaster
from backups.leases import lease_fields, lease_held, leases_reconcile
from backups.models import BackupRun, RestoreVerification, TenantExport
from tests.conftest import REPO_ROOT
from tests.helpers import stack, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

LEASE_SECONDS = 3


@pytest.fixture
def short_leases(settings):
    settings.BACKUP_LEASE_SECONDS = LEASE_SECONDS


def _manage(test_database_env, *args, scratch_dir: str | None = None) -> subprocess.Popen:
    env = {**test_database_env, "BACKUP_LEASE_SECONDS": str(LEASE_SECONDS)}
    if scratch_dir:
        env["BACKUP_SCRATCH_DIR"] = scratch_dir
    return subprocess.Popen(
        [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def _kill(process: subprocess.Popen) -> None:
    """SIGKILL to the command alone (not its session): what a killed worker or an OOM kill does."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def _pgbackrest_running(engine) -> bool:
    """A pgBackRest command of this stack's stanza still running (a killed command's orphan)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"pgbackrest") and f"--config={engine.config_path}".encode() in argv:
            if b"archive-push" not in argv and b"archive-push:async" not in argv:
                return True
    return False


def test_a_lease_is_renewed_while_the_work_goes_on(short_leases):
    export = TenantExport.objects.create(**lease_fields())
    first = export.lease_expires_at
    with lease_held(export):
        time.sleep(LEASE_SECONDS * 0.75)
        renewed = TenantExport.objects.get(pk=export.pk)
    assert renewed.lease_expires_at > first and renewed.attempts == 1
    # The owner names this process, for the operator: host:pid, then the tag that keeps its leases apart.
    assert re.fullmatch(rf"{re.escape(os.uname().nodename)}:{os.getpid()}:[0-9a-f]{{8}}", renewed.lease_owner)
    assert leases_reconcile()["backups.tenantexport"] == 0  # alive: untouched


def test_a_backup_whose_process_was_killed_is_failed_with_the_reason(
    base_full_backup, engine, short_leases, test_database_env
):
    process = _manage(test_database_env, "backup", "full")
    run = wait_for(lambda: BackupRun.objects.filter(status=BackupRun.Status.RUNNING).first(), timeout=60)
    _kill(process)
    assert BackupRun.objects.get(pk=run.pk).status == BackupRun.Status.RUNNING
    wait_for(lambda: leases_reconcile()["backups.backuprun"] == 1, timeout=LEASE_SECONDS * 4, interval=0.5)
    failed = BackupRun.objects.get(pk=run.pk)
    assert failed.status == BackupRun.Status.FAILED and failed.finished_at and failed.repo == 1
    assert failed.error.startswith(
        f"the process running it ({os.uname().nodename}:{process.pid}) stopped: no heartbeat since"
    ), failed.error
    assert leases_reconcile()["backups.backuprun"] == 0  # reconciled once
    # The killed command's pgbackrest finishes on its own (and releases pgBackRest's lock).
    wait_for(lambda: not _pgbackrest_running(engine), timeout=300, interval=1)


def _held_pg_ctl(engine, folder: Path) -> Path:
    """A PG_BINDIR whose pg_ctl, once a start has succeeded, writes its pid to `folder/started` and sleeps:
    a drill using it stays with its scratch cluster up, for as long as the test needs, to be killed there
    (a real drill keeps its cluster up for well under a second: too short to catch by polling)."""
    bindir = folder / "bin"
    bindir.mkdir(parents=True)
    for tool in engine.pg_bindir.iterdir():
        if tool.name != "pg_ctl":
            (bindir / tool.name).symlink_to(tool)
    pg_ctl = bindir / "pg_ctl"
    pg_ctl.write_text(
        f'#!/bin/sh\n"{engine.pg_bindir}/pg_ctl" "$@" || exit $?\n'
        f'case "$*" in *" start") echo $$ > "{folder}/started"; exec sleep 600;; esac\n'
    )
    pg_ctl.chmod(0o755)
    folder.chmod(0o777)  # noqa: S103 - the database's OS user writes the pid file
    return bindir


def test_a_killed_drill_leaves_no_running_cluster_no_folder_and_no_running_row(
    base_full_backup, engine, short_leases, test_database_env, scratch_dir, settings
):
    settings.BACKUP_SCRATCH_DIR = scratch_dir
    services.backup_run(kind="incr", engine=engine)
    hold = Path(scratch_dir, "hold")
    bindir = _held_pg_ctl(engine, hold)
    process = _manage({**test_database_env, "PG_BINDIR": str(bindir)}, "backup", "verify", scratch_dir=scratch_dir)
    started = hold / "started"
    try:

        def scratch_cluster_started():
            assert process.poll() is None, process.communicate()
            return started.exists() and started.read_text().strip()

        wait_for(scratch_cluster_started, timeout=180, interval=0.2)
        drill = RestoreVerification.objects.get(status=RestoreVerification.Status.RUNNING)
        data_dir = Path(drill.scratch_path, "data")
        assert running_postmaster(data_dir)
        _kill(process)
        assert running_postmaster(data_dir)  # leaked, as a killed drill leaves it
        wait_for(lambda: RestoreVerification.objects.get(pk=drill.pk).lease_expires_at < timezone.now(), timeout=30)

        outcome = services.backups_reconcile()
        assert outcome["failed"]["backups.restoreverification"] == 1
        assert outcome["reaped"] == [drill.scratch_path]
        assert not Path(drill.scratch_path).exists() and running_postmaster(data_dir) is None
        failed = RestoreVerification.objects.get(pk=drill.pk)
        assert failed.status == RestoreVerification.Status.FAILED and "stopped: no heartbeat since" in failed.error
        assert failed.scratch_path == ""
        assert services.backups_reconcile() == {"failed": dict.fromkeys(outcome["failed"], 0), "reaped": []}
    finally:
        if process.poll() is None:
            _kill(process)
        if started.exists() and started.read_text().strip():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(started.read_text()), signal.SIGKILL)  # the held pg_ctl's sleep


def test_the_reaper_leaves_other_platforms_and_running_drills_alone(short_leases, scratch_dir, settings):
    settings.BACKUP_SCRATCH_DIR = scratch_dir
    running = RestoreVerification.objects.create(**lease_fields())
    mine = Path(scratch_dir, f"restore-drill-{services._scratch_tag()}-{running.pk}-abc")
    other_platform = Path(scratch_dir, f"restore-drill-0123456789-{running.pk}-abc")
    unrelated = Path(scratch_dir, "restore-drill-notes")
    for path in (mine, other_platform, unrelated):
        path.mkdir()
    assert services.scratch_reap() == []
    RestoreVerification.objects.filter(pk=running.pk).update(status=RestoreVerification.Status.SUCCEEDED)
    assert services.scratch_reap() == [str(mine)]
    assert not mine.exists() and other_platform.exists() and unrelated.exists()


def test_primary_stopped_mid_backup_is_one_clear_line_and_no_run_stays_running(
    base_full_backup, engine, short_leases, test_database_env, stopped
):
    process = _manage(test_database_env, "backup", "full")
    run = wait_for(lambda: BackupRun.objects.filter(status=BackupRun.Status.RUNNING).first(), timeout=60)
    time.sleep(0.7)
    stopped("primary")
    _, stderr = process.communicate(timeout=300)
    # One line says why (log lines before it are the platform's logging on stderr), no traceback.
    assert process.returncode != 0 and "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1].startswith("CommandError: pgbackrest backup failed"), stderr
    stack("start", "primary")
    from django.db import connections

    connections.close_all()
    # The command could not record its failure (the database was gone): the lease says what happened.
    wait_for(lambda: leases_reconcile()["backups.backuprun"] == 1 or None, timeout=LEASE_SECONDS * 4, interval=0.5)
    failed = BackupRun.objects.get(pk=run.pk)
    assert failed.status == BackupRun.Status.FAILED and "stopped" in failed.error
    wait_for(lambda: not _pgbackrest_running(engine), timeout=300, interval=1)
