"""`manage.py backup full|incr|tenant-export|list|verify|expire|setup|wal-check|restore-tenant`."""

import json
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, InterfaceError, OperationalError

from console.cli import add_reason_argument, command_job
from console.services import CommandActor, OperatorForbidden, authorize
from console.terminal import Progress, add_yes_argument, confirm
from core.exceptions import ApplicationError

from ... import services, tenant_exports, tenant_restore
from ...engines import get_engine
from ...models import BackupRun, TenantExport, Trigger

LIST_LIMIT = 200
# Subcommands that are operator actions: (permission, audit action). restore-tenant is audited by its service.
AUDITED = {
    "full": ("console.run_backup", "backup.run"),
    "incr": ("console.run_backup", "backup.run"),
    "tenant-export": ("console.run_backup", "backup.export"),
    "expire": ("console.run_backup", "backup.expire"),
    "verify": ("console.verify_backup", "backup.verify"),
}


def _size(value: int | None) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def table(rows: list[list[str]], headers: list[str], right: set[int] = frozenset()) -> list[str]:
    """Columns as wide as their widest cell, whatever the labels hold."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells):
        parts = [
            str(c).rjust(w) if i in right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return [line(headers), *(line(row) for row in rows)]


def run_as_dict(run: BackupRun) -> dict:
    return {
        "id": run.pk, "label": run.label, "kind": run.kind, "repo": run.repo, "status": run.status,
        "trigger": run.trigger, "engine": run.engine,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "backup_started_at": run.backup_started_at.isoformat() if run.backup_started_at else None,
        "backup_stopped_at": run.backup_stopped_at.isoformat() if run.backup_stopped_at else None,
        "duration_seconds": run.duration_seconds, "size_bytes": run.size_bytes,
        "repo_size_bytes": run.repo_size_bytes, "delta_bytes": run.delta_bytes,
        "repo_delta_bytes": run.repo_delta_bytes, "wal_start": run.wal_start, "wal_stop": run.wal_stop,
        "lsn_start": run.lsn_start, "lsn_stop": run.lsn_stop, "error": run.error,
    }  # fmt: skip


def export_as_dict(export: TenantExport) -> dict:
    return {
        "id": str(export.pk), "status": export.status, "started_at": export.started_at.isoformat(),
        "tenant_count": export.tenant_count, "row_count": export.row_count, "size_bytes": export.size_bytes,
        "location": export.location, "error": export.error,
    }  # fmt: skip


class Command(BaseCommand):
    help = "Backups: physical (pgBackRest or SQLite), restore drills, WAL checks and per-tenant exports."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        sub.add_parser("setup", help="write the engine's configuration; pgBackRest: stanza in every repository, check")
        for kind, text in (("full", "take a full backup now"), ("incr", "take an incremental backup now")):
            backup = sub.add_parser(kind, help=text + (" (PostgreSQL only)" if kind == "incr" else ""))
            backup.add_argument("--repo", type=int, help="repository key (default: BACKUP_PGBACKREST_REPO)")
            add_reason_argument(backup, required=False)
        export = sub.add_parser("tenant-export", help="export every tenant's rows from one snapshot")
        add_reason_argument(export, required=False)
        listing = sub.add_parser(
            "list", help="backups of every repository (synchronised with it), failed runs, exports"
        )
        listing.add_argument("--json", action="store_true", dest="as_json", help="one JSON document instead of columns")
        verify = sub.add_parser(
            "verify", help="pgBackRest verify, then restore the latest backup to a recent point and check it"
        )
        add_reason_argument(verify, required=False)
        sub.add_parser("wal-check", help="is WAL archiving working and keeping up, per repository?")
        expire = sub.add_parser("expire", help="apply retention in every repository (each with its own policy)")
        add_reason_argument(expire, required=False)
        expire.add_argument("--dry-run", action="store_true")
        expire.add_argument("--keep-full", type=int, help="keep this many full backups instead of the policy")
        expire.add_argument("--repo", type=int, help="only this repository")
        add_yes_argument(expire)
        restore = sub.add_parser("restore-tenant", help="replace one tenant's rows from an export")
        restore.add_argument("--tenant", required=True, help="the tenant's slug or id")
        restore.add_argument("--export", required=True, help="export id or location (s3://... or a path)")
        restore.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
        add_yes_argument(restore)
        add_reason_argument(restore, required=False)

    def handle(self, *args, action, **options):
        handler = getattr(self, "do_" + action.replace("-", "_"))
        if action == "expire" and not options["dry_run"]:
            # Deletes backups: asked before the job starts (--dry-run shows what would go).
            where = f"repository {options['repo']}" if options["repo"] else "every repository"
            keep = f"keeping {options['keep_full']} full backups" if options["keep_full"] else "by the retention policy"
            confirm(f"Delete expired backups in {where}, {keep}?", yes=options["yes"], refusal="to expire")
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
        except DatabaseError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            what = (
                "the database is unavailable"
                if isinstance(exc, OperationalError | InterfaceError)
                else "database error"
            )
            raise CommandError(f"{what}: {first}") from exc

    def say(self, message: str) -> None:
        self.stdout.write(message)
        self.stdout.flush()

    def do_setup(self, **options):
        self.say(get_engine().setup())

    def _backup(self, kind: str, repo: int | None) -> None:
        engine = get_engine()
        repository = engine.repository(repo)
        self.say(f"backup {kind}: starting into {repository.label} ({engine.alias}) ...")
        started = time.monotonic()
        run = services.backup_run(kind=kind, trigger=Trigger.COMMAND, engine=engine, repo=repository.key)
        self.say(
            f"backup {kind}: {run.status} label={run.label} size={_size(run.size_bytes)} "
            f"repo={_size(run.repo_size_bytes)} wal={run.wal_start}..{run.wal_stop} "
            f"in {time.monotonic() - started:.1f} s"
        )

    def do_full(self, *, repo, **options):
        self._backup("full", repo)

    def do_incr(self, *, repo, **options):
        self._backup("incr", repo)

    def do_tenant_export(self, **options):
        export = tenant_exports.tenant_export_create(trigger=Trigger.COMMAND, progress=Progress(self.stdout))
        self.say(
            f"tenant export {export.pk}: {export.tenant_count} tenants, {export.row_count} rows, "
            f"{_size(export.size_bytes)} -> {export.location} (schema {export.schema_version})"
        )

    def do_list(self, *, as_json: bool = False, **options):
        engine = get_engine()
        sync = services.backup_sync(engine=engine)
        runs = list(BackupRun.objects.filter(engine=engine.alias).order_by("-started_at")[:LIST_LIMIT])[::-1]
        exports = list(TenantExport.objects.all()[:20])
        unreachable = [f"{message} (its backups are shown as last recorded)" for message in sync.errors.values()]
        if as_json:
            repositories = [
                {"repo": r.key, "label": r.label, "ok": r.key not in sync.errors, "error": sync.errors.get(r.key, "")}
                for r in engine.repositories()
            ]
            document = {
                "backups": [run_as_dict(run) for run in runs],
                "repositories": repositories,
                "exports": [export_as_dict(export) for export in exports],
            }
            self.say(json.dumps(document, indent=1))
        else:
            rows = [
                [
                    run.label or "-", run.kind, str(run.repo), run.status, run.trigger,
                    f"{(run.backup_started_at or run.started_at):%Y-%m-%d %H:%M:%S}", _duration(run.duration_seconds),
                    _size(run.size_bytes), _size(run.delta_bytes) if run.kind != "full" else "-",
                    _size(run.repo_size_bytes),
                    f"{run.wal_start}..{run.wal_stop}" if run.wal_start else "-",
                    run.error.splitlines()[0][:100] if run.error else "",
                ]
                for run in runs
            ]  # fmt: skip
            headers = ["label", "kind", "repo", "status", "trigger", "started (UTC)", "duration", "size", "delta",
                       "repo size", "WAL range", "error"]  # fmt: skip
            for line in table(rows, headers, right={6, 7, 8, 9}):
                self.say(line)
            for export in exports:
                self.say(f"export {export.pk} {export.status} {export.tenant_count} tenants {export.location}")
        if unreachable:
            raise CommandError("; ".join(unreachable))

    def do_verify(self, **options):
        self.say("verify: pgbackrest verify, then restoring the latest backup to a recent point ...")
        verification = services.backup_verify(trigger=Trigger.COMMAND)
        details = verification.details or {}
        if details.get("repository_verify"):
            self.say(f"verify: repository {details.get('repo')}: {details['repository_verify'].splitlines()[0]}")
        target = details.get("recovery_target")
        if target:
            self.say(f"verify: replayed WAL to restore point {target['name']} (LSN {target['lsn']})")
        self.say(f"verify: {verification.status}, {verification.tables_checked} tables readable")
        if verification.status != verification.Status.SUCCEEDED:
            raise CommandError(f"verification failed: {verification.error}")

    def do_wal_check(self, **options):
        status = services.wal_archive_check()
        self.say(json.dumps(status, indent=1, default=str))
        if not status["ok"]:
            problems = [repo["error"] for repo in status.get("repos", []) if repo.get("error")]
            raise CommandError("WAL archiving is failing or behind" + (": " + "; ".join(problems) if problems else ""))

    def do_expire(self, *, dry_run, keep_full, repo, **options):
        outcomes = services.backup_expire(dry_run=dry_run, keep_full=keep_full, repo=repo)
        for outcome in outcomes:
            self.say(f"{outcome.repository.label}: {outcome.error or outcome.output.strip() or 'nothing to expire'}")
        errors = [outcome.error for outcome in outcomes if outcome.error]
        if errors:
            raise CommandError("; ".join(errors))

    def do_restore_tenant(self, *, tenant, export, dry_run, yes, reason, **options):
        actor = CommandActor.current()
        try:
            authorize(actor, "console.restore_tenant")
        except OperatorForbidden as exc:
            raise CommandError(f"refused: OS user {actor.os_user!r} may not do this ({exc.permission})") from exc
        if not dry_run and not reason.strip():
            raise CommandError("--reason is required: say why (it goes to the audit log)")
        found = tenant_restore.export_resolve(export)
        tenant_id = tenant_restore.tenant_resolve(tenant)
        plan = tenant_restore.tenant_export_restore(
            export=found, tenant_id=tenant_id, dry_run=True, actor=actor, reason=reason
        )
        self._print_plan(plan)
        if dry_run:
            if plan.conflicts:
                raise CommandError(f"dry run: the restore would be refused ({len(plan.conflicts)} conflicts above)")
            self.say("dry run: nothing changed")
            return
        if not plan.conflicts and not yes:
            self._confirm(f"Restore tenant {tenant_id} from export {found.pk}, deleting {plan.deleted_count} rows?")
        plan = tenant_restore.tenant_export_restore(export=found, tenant_id=tenant_id, actor=actor, reason=reason)
        self.say(f"tenant {tenant_id} restored from export {found.pk}")

    def _print_plan(self, plan) -> None:
        rows = [[label, t["current"], t["in_export"], t["delete"]] for label, t in plan.tables.items()]
        for line in table(rows, ["table", "rows now", "in export", "deleted"], right={1, 2, 3}):
            self.say(line)
        for label, entry in plan.tables.items():
            for row in entry["delete_rows"]:
                self.say(f"  deletes {label} {row}")
            if entry["delete"] > len(entry["delete_rows"]):
                self.say(f"  ... and {entry['delete'] - len(entry['delete_rows'])} more rows of {label}")
        for conflict in plan.conflicts:
            self.say(f"conflict: {conflict}")

    def _confirm(self, question: str) -> None:
        confirm(question, yes=False, refusal="to restore")
