"""Reads for API keys and usage."""

import re
import uuid
from datetime import UTC, datetime, timedelta

from django.db.models import Max, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from .keyformat import ENVIRONMENTS, KEY_PREFIX
from .models import ApiKey, ApiUsageMinute, TenantUsageMonth

USAGE_FIELDS = ("requests", "client_errors", "server_errors", "rate_limited", "latency_ms_sum", "units")


def apikey_list(*, tenant=None) -> QuerySet[ApiKey]:
    queryset = ApiKey.objects.select_related("tenant").order_by("-created_at")
    return queryset.filter(tenant=tenant) if tenant is not None else queryset


# What lists show of a key: its prefix and its last four (`plk_live_…x9Qa`; `...` typed for `…`).
_DISPLAYED = re.compile(rf"^{KEY_PREFIX}_({'|'.join(ENVIRONMENTS)})_(?:…|\.\.\.)([0-9A-Za-z]{{4}})$")


def apikey_find(*, reference: str, tenant=None) -> ApiKey:
    """The key an operator names, for commands: its id, what lists show of it (prefix and last four), or its
    name (within `tenant`, required for a name). ValueError with a clear message when no key or several
    match; of several matching keys, the one not revoked is meant (an earlier key of the same name)."""
    reference = (reference or "").strip()
    keys = apikey_list(tenant=tenant)
    displayed = _DISPLAYED.match(reference)
    try:
        key_id = uuid.UUID(reference)
    except ValueError:
        key_id = None
    if key_id is not None:
        found = list(keys.filter(pk=key_id))
    elif displayed:
        found = list(keys.filter(environment=displayed[1], last_four=displayed[2]))
    elif tenant is None:
        raise ValueError(
            f"no API key with id {reference!r}; to name a key by its name, say whose: --tenant <slug or id>"
        )
    else:
        found = list(keys.filter(name=reference))
    if len(found) > 1:
        found = [api_key for api_key in found if api_key.revoked_at is None] or found
    if not found:
        whose = f" of tenant {tenant.slug}" if tenant is not None else ""
        raise ValueError(f"no API key{whose} with id, prefix or name {reference!r}")
    if len(found) > 1:
        listed = "; ".join(
            f"{api_key.pk} ({api_key.display}, {api_key.tenant.slug}, {api_key.name!r})" for api_key in found
        )
        narrow = "" if tenant is not None else " or name the tenant (--tenant)"
        raise ValueError(f"{len(found)} active API keys match {reference!r}: {listed}; name the key by its id{narrow}")
    return found[0]


def usage_summary(*, tenant, since: datetime, until: datetime | None = None) -> dict:
    """A tenant's usage per minute and per key between two instants."""
    until = until or timezone.now()
    rows = ApiUsageMinute.objects.filter(tenant=tenant, minute__gte=since, minute__lt=until)
    sums = {field: Coalesce(Sum(field), 0) for field in USAGE_FIELDS}
    totals = rows.aggregate(**sums, latency_ms_max=Coalesce(Max("latency_ms_max"), 0))
    series = list(rows.values("minute").annotate(**sums, latency_ms_max=Max("latency_ms_max")).order_by("minute"))
    names = dict(ApiKey.objects.filter(tenant=tenant).values_list("pk", "name"))
    by_key = [
        {"api_key": str(row["api_key"]), "name": names.get(row["api_key"], ""), **{k: row[k] for k in sums}}
        for row in rows.values("api_key").annotate(**sums).order_by("-requests")
    ]
    return {
        "tenant": str(tenant.pk),
        "from": since,
        "to": until,
        "totals": totals,
        "series": series,
        "keys": by_key,
    }


def usage_last_day_by_hour(*, tenant) -> list[dict]:
    """24 hourly buckets of requests for the admin chart, oldest first, empty hours included."""
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(hours=23)
    counts = {hour: 0 for hour in (start + timedelta(hours=i) for i in range(24))}
    rows = ApiUsageMinute.objects.filter(tenant=tenant, minute__gte=start).values_list("minute", "requests")
    for minute, requests in rows:
        hour = minute.replace(minute=0, second=0, microsecond=0)
        if hour in counts:
            counts[hour] += requests
    return [{"hour": hour, "requests": count} for hour, count in counts.items()]


def tenant_month_units(*, tenant_id, month) -> int:
    """The units the roll-up persisted for a tenant in a month (a `gateway.base.Month`)."""
    row = TenantUsageMonth.objects.filter(tenant_id=tenant_id, month=month.first_day).values_list("units").first()
    return row[0] if row else 0


def quota_summary(*, tenant) -> dict:
    """This month's units against the tenant's quota, the alerts sent, and each key's units this month, as
    of the last roll-up (every minute: a read never changes what it reports, the gateway's count being
    ahead by at most that)."""
    from tenants.plans import tenant_usage_plan

    from .gateway.base import current_month

    month = current_month()
    plan = tenant_usage_plan(tenant)
    row = TenantUsageMonth.objects.filter(tenant=tenant, month=month.first_day).first()
    used = row.units if row else 0
    quota = plan.monthly_quota
    remaining = None if quota is None else max(quota - used, 0)
    start = datetime.fromtimestamp(month.start, tz=UTC)
    names = dict(ApiKey.objects.filter(tenant=tenant).values_list("pk", "name"))
    per_key = (
        ApiUsageMinute.objects.filter(tenant=tenant, minute__gte=start)
        .values("api_key")
        .annotate(units=Coalesce(Sum("units"), 0))
        .order_by("-units")
    )
    return {
        "month": f"{month.first_day:%Y-%m}",
        "resets_at": datetime.fromtimestamp(month.end, tz=UTC),
        "quota": quota,
        "used": used,
        "remaining": remaining,
        "warning_sent_at": row.warning_sent_at if row else None,
        "exceeded_sent_at": row.exceeded_sent_at if row else None,
        "keys": [
            {
                "api_key": str(item["api_key"]),
                "name": names.get(item["api_key"], ""),
                "units": item["units"],
                "remaining": remaining,
            }
            for item in per_key
        ],  # fmt: skip
    }
