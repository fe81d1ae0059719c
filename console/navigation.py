"""The console's frame in the admin theme (django-unfold, configured by UNFOLD in the settings): the
sidebar grouped by what operators come to do, each link shown only to a role that may open it, and the
console's own stylesheet and script."""

from django.templatetags.static import static
from django.urls import reverse

from .roles import operator_may

# (group title, [(title, material symbol, URL name, permission needed to open it)]).
SIDEBAR = [
    ("Overview", [
        ("Dashboard", "space_dashboard", "console-dashboard", "console.view_auditlogentry"),
        ("Audit log", "history", "admin:console_auditlogentry_changelist", "console.view_auditlogentry"),
    ]),
    ("Tenants and sites", [
        ("Tenants", "apartment", "admin:tenants_tenant_changelist", "tenants.view_tenant"),
        ("Websites", "language", "admin:tenants_website_changelist", "tenants.view_website"),
        ("Deployments", "rocket_launch", "admin:tenants_deployment_changelist", "tenants.view_deployment"),
        ("Custom hostnames", "dns", "admin:tenants_hostname_changelist", "tenants.view_hostname"),
    ]),
    ("API access", [
        ("API keys", "key", "admin:apikeys_apikey_changelist", "apikeys.view_apikey"),
        ("Usage plans", "speed", "admin:tenants_usageplan_changelist", "tenants.view_usageplan"),
        ("API usage by tenant", "bar_chart", "admin:apikeys_usage_chart", "apikeys.view_apiusageminute"),
        ("Usage per minute", "table_rows", "admin:apikeys_apiusageminute_changelist", "apikeys.view_apiusageminute"),
    ]),
    ("Webhooks", [
        ("Deliveries", "send", "admin:webhooks_delivery_changelist", "webhooks.view_delivery"),
        ("Endpoints", "webhook", "admin:webhooks_endpoint_changelist", "webhooks.view_endpoint"),
        ("Events", "event_note", "admin:webhooks_event_changelist", "webhooks.view_event"),
    ]),
    ("CDN", [
        ("Invalidations", "cached", "admin:cdn_invalidation_changelist", "cdn.view_invalidation"),
        ("Provider requests", "cloud_sync", "admin:cdn_providerrequest_changelist", "cdn.view_providerrequest"),
    ]),
    ("Backups and recovery", [
        ("Backup runs", "backup", "admin:backups_backuprun_changelist", "backups.view_backuprun"),
        ("Tenant exports and restores", "settings_backup_restore", "admin:backups_tenantexport_changelist",
         "backups.view_tenantexport"),
        ("Restore drills", "fact_check", "admin:backups_restoreverification_changelist",
         "backups.view_restoreverification"),
        ("Database replicas", "storage", "admin-replicas", "console.view_auditlogentry"),
    ]),
    ("Operator accounts", [
        ("Users", "person", "admin:auth_user_changelist", "auth.view_user"),
        ("Roles (groups)", "group", "admin:auth_group_changelist", "auth.view_group"),
    ]),
]  # fmt: skip


def _may(permission: str):
    return lambda request: operator_may(request.user, permission)


def _link(url_name: str):
    return lambda request: reverse(url_name)


def sidebar(request) -> list[dict]:
    """unfold's SIDEBAR["navigation"]: groups of links; a link the user may not open is left out, and so
    is a group left empty."""
    groups = []
    for title, links in SIDEBAR:
        items = [
            {"title": label, "icon": icon, "link": _link(url_name), "permission": _may(permission)}
            for label, icon, url_name, permission in links
            if operator_may(request.user, permission)
        ]
        if items:
            groups.append({"title": title, "separator": True, "collapsible": False, "items": items})
    return groups


def console_stylesheet(request) -> str:
    return static("console/console.css")


def csp_script(request) -> str:
    return static("console/unfold-csp.js")


def index_context(request, context: dict) -> dict:
    """The admin's home page: a link to the dashboard above the applications."""
    return {**context, "console_dashboard_url": reverse("console-dashboard")}
