"""`manage.py backup ...` and `manage.py restore ...`: progress output and one clear line on failure."""

import pytest
from django.core.management import CommandError, call_command

from backups.engines import InvalidBackupEngineError, get_engine

pytestmark = pytest.mark.django_db(transaction=True)


def test_tenant_export_and_list_print_progress(tenant, capsys):
    call_command("backup", "tenant-export")
    out = capsys.readouterr().out
    assert "read   [" in out and "tenant export" in out and "1 tenants" in out
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
        call_command("backup", "restore-tenant", "--tenant", str(tenant.pk), "--export", "not-an-id")


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
