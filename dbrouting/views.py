"""Operator page: the primary's position and each replica's replay position, lag and rotation."""

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.template.response import TemplateResponse

from .monitor import get_monitor, replica_status


@staff_member_required
def replica_status_view(request):
    status = replica_status() if settings.DATABASE_REPLICAS else {"primary": {"up": None, "lsn": None}, "replicas": {}}
    if settings.DATABASE_REPLICAS:
        get_monitor().poll_now()
    context = {
        **admin.site.each_context(request),
        "title": "Database replicas",
        "status": status,
        "max_lag_bytes": settings.DATABASE_REPLICA_MAX_LAG_BYTES,
        "max_lag_seconds": settings.DATABASE_REPLICA_MAX_LAG_SECONDS,
    }
    return TemplateResponse(request, "admin/replicas.html", context)
