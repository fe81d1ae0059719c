"""Load a small demo: two tenants on different tiers, their websites and deployments. Idempotent."""

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from tenants import deployments, services
from tenants.bundles import bundle_build
from tenants.hostnames import preview_host
from tenants.models import Deployment, Tenant, Tier, Website

DEMO = [
    (
        "Acme Corp",
        "acme",
        Tier.PROFESSIONAL,
        [("Acme marketing", ["www.acme.test", "acme.test"]), ("Acme docs", ["docs.acme.test"])],
    ),
    ("Hobby Hub", "hobby", Tier.FREE, [("Hobby blog", ["blog.hobby.test"])]),
]


class Command(BaseCommand):
    help = "Create the demo tenants, websites and deployments (skips what exists)."

    def handle(self, *args, **options):
        for name, slug, tier, websites in DEMO:
            with transaction.atomic():
                tenant = Tenant.objects.filter(slug=slug).first()
                if tenant is not None:
                    self.stdout.write(f"demo tenant {slug!r} exists, skipped")
                    continue
                tenant = services.tenant_create(name=name, slug=slug, tier=tier)
                for website_name, hostnames in websites:
                    website = services.website_create(tenant=tenant, name=website_name, hostnames=hostnames)
                    for number in range(2):
                        deployments.deployment_create(
                            website=website,
                            trigger=Deployment.Trigger.COMMAND,
                            description=f"demo release {number + 1}",
                            bundle=bundle_build(
                                {"index.html": f"<h1>{website_name}</h1><p>release {number + 1}</p>\n"}
                            ),
                        )
            self.stdout.write(self.style.SUCCESS(f"demo tenant {slug!r} ({tier}) created"))
        port = settings.RUN_PORT
        for website in Website.objects.filter(tenant__slug__in=[slug for _, slug, _, _ in DEMO]).order_by("name"):
            # Served on its own host, never on the admin's; custom hostnames wait for their DNS record.
            self.stdout.write(f"  {website.name}: http://{preview_host(website.pk)}:{port}/")
