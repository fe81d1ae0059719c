"""CDN operations: `manage.py cdn invalidate <website> [paths...] [--now]`."""

from django.core.management.base import BaseCommand, CommandError

from cdn import services
from cdn.backends.base import CdnThrottled
from console.cli import add_reason_argument, command_action
from tenants import selectors


class Command(BaseCommand):
    help = "CDN cache operations."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        invalidate = sub.add_parser("invalidate", help="purge paths of a website (all of it without paths)")
        invalidate.add_argument("website", help="website id, hostname or name")
        invalidate.add_argument("paths", nargs="*", help="site-relative paths, e.g. / /about/ /blog/*")
        invalidate.add_argument(
            "--now", action="store_true", help="send at once instead of after the batching window (by a worker)"
        )
        add_reason_argument(invalidate, required=False)

    def handle(self, *args, action, **options):
        try:
            website = selectors.website_find(reference=options["website"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        reason = options["reason"] or "command"
        try:
            with command_action(permissions="console.invalidate_cdn", action="website.invalidate_cdn", reason=reason,
                                target=website, reason_required=False) as audit:  # fmt: skip
                invalidation = services.invalidation_request(website=website, paths=options["paths"], reason=reason)
                audit.detail.update({"invalidation": str(invalidation.pk), "paths": invalidation.paths})
        except CommandError as exc:
            raise CommandError(str(exc).replace("The request is invalid. paths: ", "")) from exc
        self.stdout.write(f"invalidation {invalidation.pk} requested for {len(invalidation.paths)} path(s)")
        if options["now"]:
            try:
                sent = services.invalidation_flush(website_id=website.pk)
            except CdnThrottled as exc:
                raise CommandError(f"the provider asked to wait: {exc}") from exc
            for row in sent:
                self.stdout.write(f"  {row.pk}: {row.status} {row.provider_id} {row.error}".rstrip())
            if any(row.status == "failed" for row in sent):
                raise CommandError("an invalidation failed (see above)")
