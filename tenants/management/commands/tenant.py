"""`manage.py tenant suspend|reactivate|tier|limit|delete SLUG|ID --reason WHY`: the operator's tenant tools.

Checked against the operator roles and recorded in the audit log with the OS user, like the console.
Suspending and deleting ask first (`--yes` to skip; refused without a terminal).
"""

from django.core.management.base import BaseCommand, CommandError

from console.cli import add_reason_argument, command_action
from console.terminal import add_yes_argument, confirm
from tenants import selectors, services
from tenants.models import Tenant, Tier

# Actions that cut a tenant off or destroy data: confirmed first.
CONFIRMED = {
    "suspend": "Suspend tenant {tenant} ({slug})? Its API keys are refused from the next request.",
    "delete": "Delete tenant {tenant} ({slug}) with its websites, deployments and keys? This cannot be undone.",
}


class Command(BaseCommand):
    help = "Suspend, reactivate, change the tier or API limit of, or delete a tenant (audited)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        for name, text in (
            ("suspend", "refuse the tenant's API keys from the next request on"),
            ("reactivate", "let the tenant's API keys in again"),
            ("delete", "delete the tenant and everything it owns (its keys stop at once)"),
        ):
            command = sub.add_parser(name, help=text)
            command.add_argument("tenant", help="tenant slug or id")
            add_reason_argument(command)
            if name in CONFIRMED:
                add_yes_argument(command)
        tier = sub.add_parser("tier", help="change the tenant's tier (its API limit follows)")
        tier.add_argument("tenant", help="tenant slug or id")
        tier.add_argument("tier", choices=Tier.values)
        add_reason_argument(tier)
        limit = sub.add_parser("limit", help="override the tenant's API limit (requests a minute over all its keys)")
        limit.add_argument("tenant", help="tenant slug or id")
        limit.add_argument("per_minute", help="requests a minute, or 'tier' to go back to the tier's")
        add_reason_argument(limit)

    def handle(self, *args, action, tenant, reason, **options):
        found = _tenant(tenant)
        if action in CONFIRMED:
            if not (reason or "").strip():
                raise CommandError("--reason is required: say why (it goes to the audit log)")
            question = CONFIRMED[action].format(tenant=found.name, slug=found.slug)
            confirm(question, yes=options["yes"], refusal=f"to {action}")
        getattr(self, f"_{action}")(found, reason=reason, **options)

    def _suspend(self, tenant, *, reason, **_):
        with command_action(
            permissions="console.suspend_tenant", action="tenant.suspend", reason=reason, target=tenant
        ):
            services.tenant_suspend(tenant=tenant, reason=reason)
        self.stdout.write(f"tenant {tenant.slug} suspended")

    def _reactivate(self, tenant, *, reason, **_):
        with command_action(permissions="console.suspend_tenant", action="tenant.reactivate", reason=reason,
                            target=tenant):  # fmt: skip
            services.tenant_reactivate(tenant=tenant)
        self.stdout.write(f"tenant {tenant.slug} reactivated")

    def _tier(self, tenant, *, reason, tier, **_):
        with command_action(permissions=("tenants.change_tenant", "console.change_tier"), action="tenant.change_tier",
                            reason=reason, target=tenant, detail={"tier": {"from": tenant.tier, "to": tier}}):  # fmt: skip
            tenant = services.tenant_update(tenant=tenant, tier=tier)
        self.stdout.write(f"tenant {tenant.slug}: tier {tenant.tier}, {tenant.requests_per_minute} API requests/min")

    def _limit(self, tenant, *, reason, per_minute, **_):
        if per_minute == "tier":
            value = None
        else:
            try:
                value = int(per_minute)
            except ValueError:
                raise CommandError(f"{per_minute!r}: give a number of requests a minute, or 'tier'") from None
        with command_action(permissions=("tenants.change_tenant", "console.change_tier"), action="tenant.change_tier",
                            reason=reason, target=tenant, detail={"rate_limit_override": value}):  # fmt: skip
            tenant = services.tenant_limit_override(tenant=tenant, requests_per_minute=value)
        self.stdout.write(f"tenant {tenant.slug}: {tenant.requests_per_minute} API requests/min over all its keys")

    def _delete(self, tenant, *, reason, **_):
        slug = tenant.slug
        with command_action(permissions="tenants.delete_tenant", action="tenant.delete", reason=reason, target=tenant,
                            detail={"slug": slug}):  # fmt: skip
            services.tenant_delete(tenant=tenant)
        self.stdout.write(f"tenant {slug} deleted")


def _tenant(reference: str) -> Tenant:
    try:
        return selectors.tenant_find(reference=reference)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
