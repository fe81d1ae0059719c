"""Reads for API keys and usage."""

from datetime import datetime, timedelta

from django.db.models import Max, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import ApiKey, ApiUsageMinute

USAGE_FIELDS = ("requests", "client_errors", "server_errors", "rate_limited", "latency_ms_sum")


def apikey_list(*, tenant=None) -> QuerySet[ApiKey]:
    queryset = ApiKey.objects.select_related("tenant").order_by("-created_at")
    return queryset.filter(tenant=tenant) if tenant is not None else queryset


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
