"""`manage.py backup full|incr|tenant-export|list|verify|expire|setup|wal-check|restore-tenant`."""

import json
import time

from django.core.management.base import BaseCommand, CommandError

from console.cli import add_reason_argument, command_job
from platform_site.exceptions import ApplicationError

from ... import services
from ...engines import get_engine
from ...models import BackupRun, Trigger


def _size(value: int | None) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)


# Subcommands that are operator actions: (permission, audit action). restore-tenant is audited on its own.
AUDITED = {
    "full": ("console.run_backup", "backup.run"),
    "incr": ("console.run_backup", "backup.run"),
    "tenant-export": ("console.run_backup", "backup.export"),
    "expire": ("console.run_backup", "backup.expire"),
    "verify": ("console.verify_backup", "backup.verify"),
}


class Command(BaseCommand):
    help = "Backups: physical (pgBackRest or SQLite), restore drills, WAL checks and per-tenant exports."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        sub.add_parser("setup", help="write the engine's configuration; pgBackRest: stanza-create and check")
        for name, text in (
            ("full", "take a full backup now"),
            ("incr", "take an incremental backup now (PostgreSQL only)"),
            ("tenant-export", "export every tenant's rows from one snapshot"),
            ("verify", "restore the latest backup into a scratch cluster and check it"),
        ):
            add_reason_argument(sub.add_parser(name, help=text), required=False)
        sub.add_parser("list", help="list backups (synchronised with the repository) and exports")
        sub.add_parser("wal-check", help="is WAL archiving working and keeping up?")
        expire = sub.add_parser("expire", help="apply retention")
        add_reason_argument(expire, required=False)
        expire.add_argument("--dry-run", action="store_true")
        expire.add_argument("--keep-full", type=int, help="keep this many full backups instead of 30 days")
        restore = sub.add_parser("restore-tenant", help="replace one tenant's rows from an export")
        restore.add_argument("--tenant", required=True, help="tenant id")
        restore.add_argument("--export", required=True, help="export id or location (s3://... or a path)")
        restore.add_argument("--dry-run", action="store_true", help="show row counts, change nothing")

    def handle(self, *args, action, **options):
        handler = getattr(self, "do_" + action.replace("-", "_"))
        try:
            if action in AUDITED:
                permission, audit_action = AUDITED[action]
                # Checked against the operator roles and recorded with the OS user when the job ends.
                with command_job(permissions=permission, action=audit_action, reason=options.get("reason", ""),
                                 detail={"command": f"backup {action}"}):  # fmt: skip
                    handler(**options)
            else:
                handler(**options)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc

    def say(self, message: str) -> None:
        self.stdout.write(message)
        self.stdout.flush()

    def do_setup(self, **options):
        self.say(get_engine().setup())

    def _backup(self, kind: str) -> None:
        engine = get_engine()
        self.say(f"backup {kind}: starting ({engine.alias}) ...")
        started = time.monotonic()
        run = services.backup_run(kind=kind, trigger=Trigger.COMMAND, engine=engine)
        self.say(
            f"backup {kind}: {run.status} label={run.label} size={_size(run.size_bytes)} "
            f"repo={_size(run.repo_size_bytes)} wal={run.wal_start}..{run.wal_stop} "
            f"in {time.monotonic() - started:.1f} s"
        )

    def do_full(self, **options):
        self._backup("full")

    def do_incr(self, **options):
        self._backup("incr")

    def do_tenant_export(self, **options):
        def progress(stage: str, done: int, total: int) -> None:
            width = 30
            filled = int(width * done / total) if total else width
            self.stdout.write(f"\r{stage:<6} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", ending="")
            if done == total:
                self.stdout.write("")
            self.stdout.flush()

        export = services.tenant_export_create(trigger=Trigger.COMMAND, progress=progress)
        self.say(
            f"tenant export {export.pk}: {export.tenant_count} tenants, {export.row_count} rows, "
            f"{_size(export.size_bytes)} -> {export.location} (schema {export.schema_version})"
        )

    def do_list(self, **options):
        services.backup_sync()
        self.say(f"{'label':<28} {'kind':<5} {'status':<10} {'size':>10} {'repo size':>10}  started")
        for run in BackupRun.objects.exclude(label="").order_by("backup_started_at")[:200]:
            self.say(
                f"{run.label:<28} {run.kind:<5} {run.status:<10} {_size(run.size_bytes):>10} "
                f"{_size(run.repo_size_bytes):>10}  {run.backup_started_at:%Y-%m-%d %H:%M:%S}"
            )
        from ...models import TenantExport

        for export in TenantExport.objects.all()[:20]:
            self.say(f"export {export.pk} {export.status} {export.tenant_count} tenants {export.location}")

    def do_verify(self, **options):
        self.say("verify: restoring the latest backup into a scratch cluster ...")
        verification = services.backup_verify(trigger=Trigger.COMMAND)
        self.say(f"verify: {verification.status}, {verification.tables_checked} tables readable")
        if verification.status != verification.Status.SUCCEEDED:
            raise CommandError(f"verification failed: {verification.error}")

    def do_wal_check(self, **options):
        status = services.wal_archive_check()
        self.say(json.dumps(status, indent=1))
        if not status["ok"]:
            raise CommandError("WAL archiving is failing or behind")

    def do_expire(self, *, dry_run, keep_full, **options):
        output = services.backup_expire(dry_run=dry_run, keep_full=keep_full)
        self.say(output.strip() or "nothing to expire")

    def do_restore_tenant(self, *, tenant, export, dry_run, **options):
        from ...models import TenantExport

        location = export
        if "/" not in export:
            found = TenantExport.objects.filter(pk=export).first() if _is_uuid(export) else None
            if found is None:
                raise CommandError(f"no tenant export {export}")
            location = found.location
        plan = services.tenant_export_restore(location=location, tenant_id=tenant, dry_run=dry_run)
        for label, counts in plan.items():
            self.say(f"{label:<28} current {counts['current']:>7}  in export {counts['in_export']:>7}")
        self.say("dry run: nothing changed" if dry_run else f"tenant {tenant} restored")


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
