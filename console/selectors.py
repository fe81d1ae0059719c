"""Reads for the operator dashboard: each section is one function over the apps' own records."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from apikeys.models import ApiUsageMinute
from cdn.models import Invalidation
from tenants.models import Deployment, Tenant, TenantStatus, Tier

from .models import AuditLogEntry


def tenants_by_tier_and_status() -> dict:
    """A row per tier with a count per status, and the totals; tiers and statuses with no tenant show 0."""
    counts = {
        (row["tier"], row["status"]): row["n"]
        for row in Tenant.objects.values("tier", "status").annotate(n=Count("pk"))
    }
    rows = [
        {
            "tier": tier.label,
            "counts": [counts.get((tier.value, status.value), 0) for status in TenantStatus],
            "total": sum(counts.get((tier.value, status.value), 0) for status in TenantStatus),
        }
        for tier in Tier
    ]
    return {
        "statuses": [status.label for status in TenantStatus],
        "rows": rows,
        "totals": [sum(row["counts"][i] for row in rows) for i in range(len(TenantStatus))],
        "total": sum(row["total"] for row in rows),
    }


def _last_day_hours() -> list:
    end = timezone.now().replace(minute=0, second=0, microsecond=0)
    return [end - timedelta(hours=23 - index) for index in range(24)]


def api_traffic_last_day() -> dict:
    """Requests and rate-limited requests per hour, all tenants, the last 24 hours (oldest first)."""
    hours = _last_day_hours()
    rows = (
        ApiUsageMinute.objects.filter(minute__gte=hours[0])
        .annotate(hour=TruncHour("minute"))
        .values("hour")
        .annotate(requests=Sum("requests"), rate_limited=Sum("rate_limited"))
    )
    by_hour = {row["hour"]: row for row in rows}
    requests = [by_hour.get(hour, {}).get("requests") or 0 for hour in hours]
    rate_limited = [by_hour.get(hour, {}).get("rate_limited") or 0 for hour in hours]
    total, limited = sum(requests), sum(rate_limited)
    return {
        "labels": [f"{hour:%H}:00" for hour in hours],
        "requests": requests,
        "rate_limited": rate_limited,
        "total_requests": total,
        "total_rate_limited": limited,
        "rate_limited_share": round(limited / total, 4) if total else 0.0,
    }


def replica_lag() -> list[dict]:
    """Each replica's lag as the replica monitor sees it; empty without replicas."""
    if not settings.DATABASE_REPLICAS:
        return []
    from platform_site.replica_monitor import replica_status

    return [{"alias": alias, **status} for alias, status in replica_status()["replicas"].items()]


def recent_deployments(*, limit: int = 8):
    return Deployment.objects.select_related("website", "website__tenant").order_by("-created_at")[:limit]


def recent_invalidations(*, limit: int = 8):
    return Invalidation.objects.select_related("website").order_by("-requested_at")[:limit]


def recent_audit_entries(*, limit: int = 10):
    return AuditLogEntry.objects.order_by("-created_at", "-id")[:limit]
