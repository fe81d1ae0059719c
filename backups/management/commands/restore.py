"""`manage.py restore --target-time "YYYY-MM-DD HH:MM:SS+00" --to DIR [--port N]` (or `--latest`)."""

from django.core.management.base import BaseCommand, CommandError

from console.terminal import add_yes_argument, confirm
from core.exceptions import ApplicationError

from ... import services
from ...engines.clusters import free_port


class Command(BaseCommand):
    help = "Point-in-time recovery into a new data directory with its own port (archive mode off)."

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--target-time", help='"YYYY-MM-DD HH:MM:SS+00"')
        target.add_argument("--latest", action="store_true", help="replay all archived WAL")
        parser.add_argument("--to", required=True, help="a new, empty data directory")
        parser.add_argument("--port", type=int, help="port of the restored cluster (default: a free one)")
        parser.add_argument("--repo", type=int, help="repository to restore from (default: BACKUP_PGBACKREST_REPO)")
        parser.add_argument(
            "--force", action="store_true", help="allow a non-empty directory (the primary's only when stopped)"
        )
        add_yes_argument(parser)

    def handle(self, *args, target_time, latest, to, port, force, repo, yes, **options):
        if force:
            # Whatever the directory holds is replaced by the restored cluster.
            confirm(f"Replace the contents of {to} with the restored cluster?", yes=yes, refusal="to overwrite it")
        port = port or free_port()
        self.stdout.write(f"restore: {'latest' if latest else target_time} into {to} on port {port} ...")
        try:
            cluster = services.backup_restore(to=to, port=port, target_time=target_time, force=force, repo=repo)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"restore: running on 127.0.0.1:{cluster.port}, data {cluster.data_dir}; recovered to LSN "
            f"{cluster.recovered_lsn or '?'}, last transaction {cluster.recovered_time or '?'}\n"
            "restore: archive_mode is off; to stop, remove or promote this copy see deploy/pgbackrest/README.md "
            '("A point-in-time copy")'
        )
