"""Reads for the operator dashboard: each section is one function over the apps' own records."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from apikeys.models import ApiUsageMinute
from backups import selectors as backup_selectors
from backups.models import BackupRun, RestoreVerification, TenantExport
from cdn.selectors import invalidations_recent
from tenants.models import Deployment, Tenant, TenantStatus, Tier
from webhooks.models import Attempt, Delivery

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
    # The gateway counts in its store; the usage roll-up (every minute, on the beat schedule) copies the
    # counts here. Say up to when, so a figure that has not been rolled up yet is not read as "no traffic".
    newest = ApiUsageMinute.objects.order_by("-minute").values_list("minute", flat=True).first()
    return {
        "counted_until": newest + timedelta(minutes=1) if newest else None,
        "labels": [f"{hour:%H}:00" for hour in hours],
        "requests": requests,
        "rate_limited": rate_limited,
        "total_requests": total,
        "total_rate_limited": limited,
        "rate_limited_share": round(limited / total, 4) if total else 0.0,
    }


def webhook_attempts_last_day() -> dict:
    """Delivery attempts per hour, succeeded and failed, the last 24 hours, and the failure rate of those
    attempts; beside it the deliveries by state now (a failed attempt is retried: its delivery stays
    pending until it succeeds or runs out of attempts), counted as the deliveries list filters them."""
    hours = _last_day_hours()
    rows = (
        Attempt.objects.filter(started_at__gte=hours[0])
        .annotate(hour=TruncHour("started_at"))
        .values("hour", "succeeded")
        .annotate(n=Count("pk"))
    )
    counts = {(row["hour"], row["succeeded"]): row["n"] for row in rows}
    succeeded = [counts.get((hour, True), 0) for hour in hours]
    failed = [counts.get((hour, False), 0) for hour in hours]
    total = sum(succeeded) + sum(failed)
    return {
        "labels": [f"{hour:%H}:00" for hour in hours],
        "succeeded": succeeded,
        "failed": failed,
        "total_attempts": total,
        "total_failed": sum(failed),
        "failure_rate": round(sum(failed) / total, 4) if total else 0.0,
        "failed_deliveries": Delivery.objects.filter(status=Delivery.Status.FAILED).count(),
        "pending_deliveries": Delivery.objects.filter(status=Delivery.Status.PENDING).count(),
        "retrying_deliveries": Delivery.objects.filter(status=Delivery.Status.PENDING, attempt_count__gt=0).count(),
    }


def freshness(finished_at, *, amber_after_hours: float, red_after_hours: float) -> str:
    """green / amber / red by age; red when there is nothing."""
    if finished_at is None:
        return "red"
    age_hours = (timezone.now() - finished_at).total_seconds() / 3600
    if age_hours < amber_after_hours:
        return "green"
    return "amber" if age_hours < red_after_hours else "red"


def _latest_row(title: str, latest, latest_ok, *, amber: float, red: float) -> dict:
    finished = latest_ok.finished_at if latest_ok else None
    state = freshness(finished, amber_after_hours=amber, red_after_hours=red)
    # A failure after the last success needs a look even while the success is recent.
    if state == "green" and latest is not None and latest.status == "failed":
        state = "amber"
    return {
        "title": title,
        "latest": latest,
        "latest_ok": latest_ok,
        "finished_at": finished,
        "age": timezone.now() - finished if finished else None,
        "state": state,
    }


def backup_engine() -> dict:
    """The configured backup engine as the console names it, and what it can do."""
    from backups.engines import get_engine

    engine = get_engine()
    return {
        "alias": engine.alias,
        "name": engine.display_name or engine.alias,
        "supports_incremental": engine.supports_incremental,
    }


def latest_backups() -> list[dict]:
    """The latest backup, tenant export and restore drill, each with its age and a green/amber/red state;
    the backup named by the configured engine."""
    engine = backup_engine()
    return [
        _latest_row(f"Database backup ({engine['name']})", *backup_selectors.latest_finished(BackupRun),
                    amber=settings.CONSOLE_BACKUP_AMBER_AFTER_HOURS, red=settings.CONSOLE_BACKUP_RED_AFTER_HOURS),
        _latest_row("Tenant export", *backup_selectors.latest_finished(TenantExport),
                    amber=settings.CONSOLE_EXPORT_AMBER_AFTER_HOURS, red=settings.CONSOLE_EXPORT_RED_AFTER_HOURS),
        _latest_row("Restore drill (verification)", *backup_selectors.latest_finished(RestoreVerification),
                    amber=settings.CONSOLE_VERIFY_AMBER_AFTER_HOURS, red=settings.CONSOLE_VERIFY_RED_AFTER_HOURS),
    ]  # fmt: skip


def replica_lag() -> list[dict]:
    """Each replica's lag as the replica monitor sees it; empty without replicas."""
    if not settings.DATABASE_REPLICAS:
        return []
    from dbrouting.monitor import replica_status

    return [{"alias": alias, **status} for alias, status in replica_status()["replicas"].items()]


def recent_deployments(*, limit: int = 8):
    return Deployment.objects.select_related("website", "website__tenant").order_by("-created_at")[:limit]


def recent_invalidations(*, limit: int = 8):
    return invalidations_recent(limit=limit)


def recent_audit_entries(*, limit: int = 10):
    return AuditLogEntry.objects.order_by("-created_at", "-id")[:limit]
