"""Roll a website back: `manage.py rollback <website> [--to NUMBER]`."""

from django.core.management.base import BaseCommand, CommandError

from platform_site.exceptions import ApplicationError
from tenants import selectors, services


class Command(BaseCommand):
    help = "Serve an earlier successful deployment again (default: the one before the active one)."

    def add_arguments(self, parser):
        parser.add_argument("website", help="website id, hostname or name")
        parser.add_argument("--to", type=int, dest="number", help="deployment number to roll back to")

    def handle(self, *args, website, number, **options):
        try:
            site = selectors.website_find(reference=website)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        target = None
        if number is not None:
            target = site.deployments.filter(number=number).first()
            if target is None:
                raise CommandError(f"website {site.name!r} has no deployment #{number}")
        try:
            deployment = services.deployment_rollback(website=site, to=target)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"{site.name}: now serving deployment #{deployment.source_deployment.number}'s files "
                f"as #{deployment.number}"
            )
        )
