"""CDN operations: `manage.py cdn invalidate <website> [paths...] [--now]`."""

import time

from django.core.management.base import BaseCommand, CommandError

from cdn import provider_requests, services
from cdn.backends.base import CdnThrottled
from cdn.models import Invalidation
from console.cli import add_reason_argument, command_action
from tenants import selectors


class Command(BaseCommand):
    help = "CDN cache operations."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        invalidate = sub.add_parser("invalidate", help="purge paths of a website (all of it without paths)")
        invalidate.add_argument("website", help="website id, hostname, name or tenant-slug/name")
        invalidate.add_argument("paths", nargs="*", help="site-relative paths, e.g. / /about/ /blog/*")
        invalidate.add_argument(
            "--now",
            action="store_true",
            help="send at once instead of after the batching window, and report the provider's answer",
        )
        invalidate.add_argument(
            "--wait", type=float, default=30.0, help="with --now: seconds to wait for a send already under way"
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
        self.stdout.write(
            f"invalidation {invalidation.pk} requested for {len(invalidation.paths)} path(s) of {website.name}"
        )
        if not options["now"]:
            invalidation.refresh_from_db()
            if invalidation.status == Invalidation.Status.PENDING:
                self.stdout.write("  pending: sent with the website's other requests after the batching window")
            else:
                self._report(invalidation)
            return
        try:
            provider_requests.invalidation_flush(website_id=website.pk)
        except CdnThrottled as exc:
            raise CommandError(f"the provider asked to wait: {exc}") from exc
        self._report(self._settled(invalidation, timeout=options["wait"]))

    @staticmethod
    def _settled(invalidation: Invalidation, *, timeout: float) -> Invalidation:
        """The invalidation once it left `pending` (a worker or the commit's own flush may be sending it)."""
        deadline = time.monotonic() + timeout
        invalidation.refresh_from_db()
        while invalidation.status == Invalidation.Status.PENDING and time.monotonic() < deadline:
            time.sleep(0.2)
            invalidation.refresh_from_db()
        return invalidation

    def _report(self, invalidation: Invalidation) -> None:
        status = invalidation.status
        requests = list(invalidation.requests.order_by("created_at"))
        for request in requests:
            provider = f" id {request.provider_id}" if request.provider_id else ""
            error = f": {request.error}" if request.error else ""
            self.stdout.write(
                f"  provider request {request.pk} to {request.backend} ({request.target or '-'}){provider}: "
                f"{request.status}{error}"
            )
        # A request that failed and waits for its retry leaves the invalidation in progress: not done yet.
        waiting = status == Invalidation.Status.PENDING or any(r.status == r.Status.PENDING for r in requests)
        if status == Invalidation.Status.FAILED:
            raise CommandError(f"invalidation {invalidation.pk} failed: {invalidation.error or 'see above'}")
        if status == Invalidation.Status.COMPLETED:
            self.stdout.write(self.style.SUCCESS(f"invalidation {invalidation.pk}: completed"))
        elif waiting:
            retry_in = provider_requests.invalidation_retry_in(website_id=invalidation.website_id)
            when = f"; next attempt in {retry_in:.0f} s" if retry_in else ""
            raise CommandError(f"invalidation {invalidation.pk} is still pending{when}")
        else:
            self.stdout.write(
                f"invalidation {invalidation.pk}: accepted by the provider, in progress (the beat poll records "
                "its completion; the console shows it)"
            )
