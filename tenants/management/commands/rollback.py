"""Roll a website back: `manage.py rollback <website> [--to NUMBER]`."""

from django.core.management.base import BaseCommand, CommandError

from console.cli import add_reason_argument, command_action
from tenants import deployments, selectors


class Command(BaseCommand):
    help = "Serve an earlier successful deployment again (default: the one before the active one)."

    def add_arguments(self, parser):
        parser.add_argument("website", help="website id, hostname or name")
        parser.add_argument("--to", type=int, dest="number", help="deployment number to roll back to")
        add_reason_argument(parser)

    def handle(self, *args, website, number, reason, **options):
        try:
            site = selectors.website_find(reference=website)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        target = None
        if number is not None:
            target = site.deployments.filter(number=number).first()
            if target is None:
                raise CommandError(f"website {site.name!r} has no deployment #{number}")
        with command_action(permissions="tenants.change_website", action="website.rollback", reason=reason,
                            target=site) as audit:  # fmt: skip
            deployment = deployments.deployment_rollback(website=site, to=target)
            audit.detail.update({"deployment": deployment.number, "serving": deployment.source_deployment.number})
        self.stdout.write(
            self.style.SUCCESS(
                f"{site.name}: now serving deployment #{deployment.source_deployment.number}'s files "
                f"as #{deployment.number}"
            )
        )
