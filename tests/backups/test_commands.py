"""`manage.py backup ...` and `manage.py restore ...`: progress output and one clear line on failure."""

import getpass
import io
import re

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from backups.engines import InvalidBackupEngineError, get_engine
from tenants import services as tenant_services

pytestmark = pytest.mark.django_db(transaction=True)


def test_tenant_export_and_list_print_progress(tenant, capsys):
    call_command("backup", "tenant-export")
    out = capsys.readouterr().out
    # Not a terminal: plain progress lines, no carriage returns.
    assert re.search(r"^read +(\d+)/\1 \(100%\)$", out, re.M) and "\r" not in out
    assert "tenant export" in out and "1 tenants" in out
    call_command("backup", "list")
    assert "export " in capsys.readouterr().out


def test_restore_tenant_dry_run_by_export_id(tenant, capsys):
    from backups.models import TenantExport

    call_command("backup", "tenant-export")
    export = TenantExport.objects.get()
    call_command("backup", "restore-tenant", "--tenant", str(tenant.pk), "--export", str(export.pk), "--dry-run")
    out = capsys.readouterr().out
    assert "tenants.tenant" in out and "dry run: nothing changed" in out
    with pytest.raises(CommandError, match="no tenant export not-an-id"):
        call_command("backup", "restore-tenant", "--tenant", str(tenant.pk), "--export", "not-an-id", "--reason", "x")


def test_restore_tenant_by_slug_asks_for_confirmation_and_is_audited(tenant, website, capsys, monkeypatch, settings):
    from backups.models import TenantExport
    from console.models import AuditLogEntry
    from tenants.models import Website

    call_command("backup", "tenant-export")
    export = TenantExport.objects.get()
    extra = tenant_services.website_create(tenant=tenant, name="Since", hostnames=["since.a.test"])
    args = ["backup", "restore-tenant", "--tenant", "tenant-a", "--export", export.location, "--reason", "ticket 9"]

    # The operator role map applies (a shell user acting as support may not restore), and a reason is required.
    settings.CLI_OPERATOR_ROLE = "support"
    with pytest.raises(CommandError, match=r"refused: OS user .* \(console.restore_tenant\)"):
        call_command(*args)
    settings.CLI_OPERATOR_ROLE = "platform admins"
    with pytest.raises(CommandError, match="--reason is required"):
        call_command(*args[:-2], "--yes")
    # Not a terminal and no --yes: refused, nothing changed.
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(CommandError, match="run again with --yes"):
        call_command(*args)
    assert Website.objects.filter(pk=extra.pk).exists()
    out = capsys.readouterr().out
    assert f"deletes tenants.website {extra.pk}: Since" in out and "deletes tenants.hostname" in out

    call_command(*args, "--yes")
    assert not Website.objects.filter(pk=extra.pk).exists() and Website.objects.filter(pk=website.pk).exists()
    assert f"tenant {tenant.pk} restored from export {export.pk}" in capsys.readouterr().out
    entries = AuditLogEntry.objects.filter(action="tenant.restore").order_by("id")
    assert [entry.outcome for entry in entries] == ["dry_run", "dry_run", "done"]
    assert {entry.reason for entry in entries} == {"ticket 9"}
    last = entries.last()
    assert (last.actor_username, last.source, last.target_id) == (getpass.getuser(), "cli", str(tenant.pk))


def test_restore_tenant_with_a_conflict_is_one_clear_error(tenant, website, capsys):
    from backups.models import TenantExport
    from console.models import AuditLogEntry
    from tenants.models import Hostname, Tenant

    Hostname.objects.filter(website=website).update(status="verified", verified_at=timezone.now())
    call_command("backup", "tenant-export")
    export = TenantExport.objects.get()
    Hostname.objects.filter(website=website).delete()
    other = tenant_services.tenant_create(name="Other", slug="other")
    taken = tenant_services.website_create(tenant=other, name="Took it", hostnames=["www.a.test"])
    Hostname.objects.filter(website=taken).update(status="verified", verified_at=timezone.now())
    with pytest.raises(CommandError) as refused:
        call_command(
            "backup", "restore-tenant", "--tenant", "tenant-a", "--export", str(export.pk), "--yes", "--reason", "x"
        )
    assert "is refused" in str(refused.value) and "www.a.test" in str(refused.value)
    assert "conflict: tenants.hostname" in capsys.readouterr().out
    assert AuditLogEntry.objects.filter(action="tenant.restore", outcome="refused").count() == 1
    assert not Hostname.objects.filter(website=website).exists() and Tenant.objects.count() == 2
    with pytest.raises(CommandError, match="no tenant has the slug 'nobody'"):
        call_command("backup", "restore-tenant", "--tenant", "nobody", "--export", str(export.pk), "--dry-run")


def test_incremental_on_sqlite_engine_is_one_clear_error(settings, tmp_path):
    settings.BACKUP_ENGINE = "sqlite"
    settings.BACKUP_ENGINES = {
        **settings.BACKUP_ENGINES,
        "sqlite": {"BACKEND": "backups.engines.sqlite.SQLiteEngine", "OPTIONS": {"directory": str(tmp_path)}},
    }
    with pytest.raises(CommandError, match="need PostgreSQL"):
        call_command("backup", "incr")


def test_restore_rejects_a_bad_target_time():
    with pytest.raises(CommandError, match="YYYY-MM-DD HH:MM:SS"):
        call_command("restore", "--target-time", "last tuesday", "--to", "/tmp/never-created")


def test_unknown_engine_is_a_configuration_error(settings):
    settings.BACKUP_ENGINE = "tape"
    with pytest.raises(InvalidBackupEngineError, match="'tape' is not one of"):
        get_engine()


def test_list_has_aligned_columns_failed_runs_deltas_and_json(capsys):
    import json

    from backups import services
    from backups.models import BackupRun

    full = services.backup_run(kind="full")
    incr = services.backup_run(kind="incr")
    BackupRun.objects.create(
        engine="pgbackrest",
        repo=2,
        kind="full",
        status="failed",
        trigger="schedule",
        error="repository 2 (S3 at x) unreachable",
    )
    capsys.readouterr()
    call_command("backup", "list")
    lines = capsys.readouterr().out.splitlines()
    header = lines[0]
    assert header.split() == ["label", "kind", "repo", "status", "trigger", "started", "(UTC)", "duration", "size",
                              "delta", "repo", "size", "WAL", "range", "error"]  # fmt: skip
    rows = {line.split()[0]: line for line in lines[1:] if not line.startswith("export ")}
    assert {full.label, incr.label, "-"} <= set(rows)  # and the sets the repositories already held
    # Every column starts at the same place on every line, whatever the label's length.
    for column in ("kind", "repo", "status", "trigger", "started (UTC)", "WAL range", "error"):
        start = header.index(column)
        for line in lines[1:]:
            if not line.startswith("export ") and len(line) > start:
                assert line[start - 2 : start] == "  " and line[start] != " ", (column, line)
    assert all(not cell.startswith("-") or cell == "-" for line in lines[1:] for cell in line.split())  # no negatives
    assert f"{incr.wal_start}..{incr.wal_stop}" in rows[incr.label]
    assert "repository 2 (S3 at x) unreachable" in rows["-"] and " failed " in rows["-"]
    assert incr.delta_bytes and incr.delta_bytes < incr.size_bytes

    call_command("backup", "list", "--json")
    document = json.loads(capsys.readouterr().out)
    by_label = {entry["label"]: entry for entry in document["backups"]}
    assert by_label[incr.label]["delta_bytes"] == incr.delta_bytes and by_label[incr.label]["kind"] == "incr"
    assert by_label[""]["status"] == "failed" and by_label[""]["repo"] == 2
    assert [(repo["repo"], repo["ok"]) for repo in document["repositories"]] == [(1, True), (2, True)]


def test_backup_commands_are_operator_actions_checked_and_audited(tenant, settings, capsys):
    import getpass

    from backups.models import TenantExport
    from console.models import AuditLogEntry

    settings.CLI_OPERATOR_ROLE = "support"  # a shell user without an account, acting as support
    with pytest.raises(CommandError, match=r"refused: .* \(console.run_backup\)"):
        call_command("backup", "tenant-export", "--reason", "before the migration")
    assert not TenantExport.objects.exists() and not AuditLogEntry.objects.exists()
    settings.CLI_OPERATOR_ROLE = "platform admins"
    call_command("backup", "tenant-export", "--reason", "before the migration")
    entry = AuditLogEntry.objects.get()
    assert (entry.action, entry.source, entry.actor_username, entry.reason, entry.outcome) == (
        "backup.export", "cli", getpass.getuser(), "before the migration", "done",
    )  # fmt: skip
    assert TenantExport.objects.get().status == TenantExport.Status.SUCCEEDED


def test_expire_asks_first_unless_dry_run(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(CommandError, match="not a terminal; run again with --yes to expire"):
        call_command("backup", "expire", "--keep-full", "1")
    from console.models import AuditLogEntry

    assert not AuditLogEntry.objects.filter(action="backup.expire").exists()


def test_restore_over_a_directory_asks_first(monkeypatch, tmp_path):
    target = tmp_path / "kept"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(CommandError, match="not a terminal; run again with --yes to overwrite it"):
        call_command("restore", "--latest", "--to", str(target), "--force")
    assert [path.name for path in target.iterdir()] == ["notes.txt"]
