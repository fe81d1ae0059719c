"""Usage plans: what a tenant may do through the API, per tier, with an operator's audited overrides.

A plan has three optional limits, each in units (requests weighted by the operation's cost, see
`apikeys.middleware`): a burst (units a second), the per-minute limit, and a monthly quota (calendar
month, UTC). The API gateway never reads them from the database in its steady state: they travel with
the tenant's cached record, republished on every change (`publish_tenant_access`).
"""

import logging
from typing import NamedTuple

from django.db import transaction

from core.exceptions import ApplicationError

from .access import publish_tenant_access
from .models import DEFAULT_USAGE_PLANS, Tenant, Tier, UsagePlan

logger = logging.getLogger(__name__)

MAX_BURST_PER_SECOND = 1_000_000
MAX_REQUESTS_PER_MINUTE = 10_000_000
MAX_MONTHLY_QUOTA = 10**15
PLAN_FIELDS = {
    "burst_per_second": MAX_BURST_PER_SECOND,
    "requests_per_minute": MAX_REQUESTS_PER_MINUTE,
    "monthly_quota": MAX_MONTHLY_QUOTA,
}
# A tenant's overrides of its plan (fields of Tenant) and the plan field each replaces; the per-minute one,
# rate_limit_override, has its own service (tenants.services.tenant_limit_override).
PLAN_OVERRIDES = {"burst_override": "burst_per_second", "monthly_quota_override": "monthly_quota"}
_UNCHANGED = object()


class Plan(NamedTuple):
    burst_per_second: int | None
    requests_per_minute: int | None
    monthly_quota: int | None


def tier_usage_plan(tier: str) -> Plan:
    """The tier's plan as operators set it (the documented default if its row is missing)."""
    row = UsagePlan.objects.filter(tier=tier).values_list(*PLAN_FIELDS).first()
    return Plan(*row) if row else Plan(**DEFAULT_USAGE_PLANS[Tier(tier)])


def usage_plans_by_tier() -> dict[str, Plan]:
    """Every tier's plan in one query (lists of tenants read it once, not once a row)."""
    rows = {row[0]: Plan(*row[1:]) for row in UsagePlan.objects.values_list("tier", *PLAN_FIELDS)}
    return {tier: rows.get(tier) or Plan(**DEFAULT_USAGE_PLANS[Tier(tier)]) for tier in Tier.values}


def tenant_usage_plan(tenant: Tenant, *, tier_plan: Plan | None = None) -> Plan:
    """The plan the gateway applies to a tenant: its tier's (read unless given), with an operator's overrides
    on top."""
    plan = tier_plan or tier_usage_plan(tenant.tier)
    return Plan(
        tenant.burst_override or plan.burst_per_second,
        tenant.rate_limit_override or plan.requests_per_minute,
        tenant.monthly_quota_override or plan.monthly_quota,
    )


def _check(field: str, value: int | None, *, form_field: str | None = None) -> None:
    maximum = PLAN_FIELDS[field]
    if value is not None and not 1 <= value <= maximum:
        raise ApplicationError(
            "invalid", "The request is invalid.", fields={form_field or field: [f"Between 1 and {maximum}, or empty."]}
        )


def usage_plans_seed(*, using: str = "default") -> int:
    """Create the documented default plan of every tier that has none (idempotent). Returns how many."""
    created = 0
    for tier, values in DEFAULT_USAGE_PLANS.items():
        created += UsagePlan.objects.using(using).get_or_create(tier=tier, defaults=values)[1]
    return created


def usage_plans_seed_after_migrate(sender, using="default", **kwargs) -> None:
    usage_plans_seed(using=using)


@transaction.atomic
def usage_plan_update(
    *, tier: str, burst_per_second: int | None, requests_per_minute: int | None, monthly_quota: int | None
) -> UsagePlan:
    """Set a tier's plan (for operators, audited by the caller); every tenant of the tier gets it on its
    next request."""
    values = {"burst_per_second": burst_per_second, "requests_per_minute": requests_per_minute}
    values["monthly_quota"] = monthly_quota
    for field, value in values.items():
        _check(field, value)
    if tier not in Tier.values:
        raise ApplicationError("invalid", "The request is invalid.", fields={"tier": [f"One of {Tier.values}."]})
    plan, _ = UsagePlan.objects.select_for_update().update_or_create(tier=tier, defaults=values)
    tenants = list(Tenant.objects.filter(tier=tier))
    transaction.on_commit(lambda: [publish_tenant_access(tenant) for tenant in tenants])
    logger.info("usage plan updated tier=%s %s", tier, values)
    return plan


@transaction.atomic
def tenant_plan_override(*, tenant: Tenant, burst_per_second=_UNCHANGED, monthly_quota=_UNCHANGED) -> Tenant:
    """Set (or clear, with None) a tenant's own burst or monthly quota instead of its plan's (operators
    only, audited by the caller; the per-minute override is tenants.services.tenant_limit_override)."""
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    changed = []
    if burst_per_second is not _UNCHANGED:
        _check("burst_per_second", burst_per_second, form_field="burst_override")
        tenant.burst_override = burst_per_second
        changed.append("burst_override")
    if monthly_quota is not _UNCHANGED:
        _check("monthly_quota", monthly_quota, form_field="monthly_quota_override")
        tenant.monthly_quota_override = monthly_quota
        changed.append("monthly_quota_override")
    if changed:
        tenant.save(update_fields=[*changed, "updated_at"])
        transaction.on_commit(lambda: publish_tenant_access(tenant))
        logger.info("tenant plan override id=%s burst=%s quota=%s", tenant.pk, tenant.burst_override,
                    tenant.monthly_quota_override)  # fmt: skip
    return tenant
