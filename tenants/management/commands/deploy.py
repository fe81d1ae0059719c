"""Deploy a site bundle: `manage.py deploy <website> <bundle.tar.gz|zip> [--description ...]`."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from console.cli import add_reason_argument, command_action
from core.exceptions import ApplicationError
from tenants import deployments, selectors
from tenants.models import Deployment


class Command(BaseCommand):
    help = "Upload a tar.gz or zip bundle as the website's next deployment and run it now."

    def add_arguments(self, parser):
        parser.add_argument("website", help="website id, hostname or name")
        parser.add_argument("bundle", help="path to a .tar.gz or .zip archive")
        parser.add_argument("--description", default="")
        add_reason_argument(parser, required=False)

    def handle(self, *args, website, bundle, description, reason, **options):
        try:
            site = selectors.website_find(reference=website)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        path = Path(bundle)
        if not path.is_file():
            raise CommandError(f"{bundle}: no such file")
        try:
            self.stdout.write(f"validating and uploading {path} ({path.stat().st_size} bytes)...")
            with command_action(permissions="tenants.add_deployment", action="deployment.create", reason=reason,
                                target=site, reason_required=False) as audit:  # fmt: skip
                deployment = deployments.deployment_create(
                    website=site, trigger=Deployment.Trigger.COMMAND, description=description,
                    bundle=path.read_bytes(), run=False,
                )  # fmt: skip
                audit.detail.update({"deployment": str(deployment.pk), "number": deployment.number})
            self.stdout.write(f"deployment #{deployment.number} created; storing files...")
            deployment = deployments.deployment_execute(deployment=deployment)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if deployment.status != Deployment.Status.SUCCEEDED:
            raise CommandError(f"deployment #{deployment.number} failed: {deployment.error}")
        self.stdout.write(
            self.style.SUCCESS(
                f"deployment #{deployment.number} is live: {deployment.file_count} files in "
                f"{deployment.duration_seconds:.2f}s"
            )
        )
