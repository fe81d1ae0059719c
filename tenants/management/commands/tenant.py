"""`manage.py tenant suspend|reactivate|tier|limit|delete SLUG|ID --reason WHY`: the operator's tenant tools.

`limit` overrides the usage plan: the per-minute limit, `--burst` and `--monthly-quota` (each a number, or
'tier' to go back to the tier's plan).

Checked against the operator roles and recorded in the audit log with the OS user, like the console.
Suspending and deleting ask first (`--yes` to skip; refused without a terminal).
"""

from django.core.management.base import BaseCommand, CommandError

from console.cli import add_reason_argument, command_action
from console.terminal import add_yes_argument, confirm
from tenants import plans, selectors, services
from tenants.models import Tenant, Tier

# Actions that cut a tenant off or destroy data: confirmed first.
CONFIRMED = {
    "suspend": "Suspend tenant {tenant} ({slug})? Its API keys are refused from the next request.",
    "delete": "Delete tenant {tenant} ({slug}) with its websites, deployments and keys? This cannot be undone.",
}


class Command(BaseCommand):
    help = "Suspend, reactivate, change the tier or usage plan limits of, or delete a tenant (audited)."

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
        limit = sub.add_parser(
            "limit", help="override the tenant's usage plan: requests a minute over all its keys, burst, monthly quota"
        )
        limit.add_argument("tenant", help="tenant slug or id")
        limit.add_argument("per_minute", nargs="?", help="requests a minute, or 'tier' to go back to the tier's")
        limit.add_argument("--burst", help="requests a second over all its keys, or 'tier' for the tier's plan")
        limit.add_argument("--monthly-quota", help="units a calendar month (UTC), or 'tier' for the tier's plan")
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

    def _limit(self, tenant, *, reason, per_minute, burst, monthly_quota, **_):
        given = {
            field: _override(value, what)
            for field, value, what in (
                ("rate_limit_override", per_minute, "the per-minute limit: give a number of requests a minute"),
                ("burst_override", burst, "--burst: give a number of requests a second"),
                ("monthly_quota_override", monthly_quota, "--monthly-quota: give a number of units a month"),
            )
            if value is not None
        }
        if not given:
            raise CommandError("give a per-minute limit, --burst or --monthly-quota (a number, or 'tier')")
        with command_action(permissions=("tenants.change_tenant", "console.change_tier"), action="tenant.change_tier",
                            reason=reason, target=tenant, detail=given):  # fmt: skip
            if "rate_limit_override" in given:
                tenant = services.tenant_limit_override(tenant=tenant, requests_per_minute=given["rate_limit_override"])
            overrides = {name: given[field] for field, name in plans.PLAN_OVERRIDES.items() if field in given}
            if overrides:
                tenant = plans.tenant_plan_override(tenant=tenant, **overrides)
        plan = plans.tenant_usage_plan(tenant)
        self.stdout.write(
            f"tenant {tenant.slug}: {plan.requests_per_minute} API requests/min over all its keys, "
            f"burst {_or_none(plan.burst_per_second, '/s')}, monthly quota {_or_none(plan.monthly_quota, ' units')}"
        )

    def _delete(self, tenant, *, reason, **_):
        slug = tenant.slug
        with command_action(permissions="tenants.delete_tenant", action="tenant.delete", reason=reason, target=tenant,
                            detail={"slug": slug}):  # fmt: skip
            services.tenant_delete(tenant=tenant)
        self.stdout.write(f"tenant {slug} deleted")


def _override(value: str, what: str) -> int | None:
    """An override as typed: a number, or 'tier' (None: the tier's plan applies again)."""
    if value == "tier":
        return None
    try:
        return int(value)
    except ValueError:
        raise CommandError(f"{value!r}: {what}, or 'tier'") from None


def _or_none(value: int | None, unit: str) -> str:
    return f"{value}{unit}" if value else "none"


def _tenant(reference: str) -> Tenant:
    try:
        return selectors.tenant_find(reference=reference)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
