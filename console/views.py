"""The operator dashboard: one page over tenants, API traffic, webhooks, backups, replicas and changes."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from . import selectors
from .roles import operator_may

# Every role may look at the console; a staff account without one sees nothing of the tenants.
DASHBOARD_PERMISSION = "console.view_auditlogentry"


def dashboard(request):
    if not operator_may(request.user, DASHBOARD_PERMISSION):
        raise PermissionDenied
    context = {
        **admin.site.each_context(request),
        "title": "Operator console",
        "tenants": selectors.tenants_by_tier_and_status(),
        "traffic": selectors.api_traffic_last_day(),
        "webhooks": selectors.webhook_attempts_last_day(),
        "backups": selectors.latest_backups(),
        "backup_engine": selectors.backup_engine(),
        "replicas": selectors.replica_lag(),
        "deployments": selectors.recent_deployments(),
        "invalidations": selectors.recent_invalidations(),
        "audit_entries": selectors.recent_audit_entries(),
    }
    return TemplateResponse(request, "admin/console/dashboard.html", context)
