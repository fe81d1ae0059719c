"""The operator roles, as Django groups kept in step with this table after every migrate.

Support may look at everything and do what cannot lose data (redeliver webhooks, purge a CDN cache,
verify a backup); platform admins may do everything, including revoking, suspending and restoring.
Enforced on the server: every console action is gated by one of these permissions (see console/admin.py).
"""

import logging

from django.db import transaction
from django.db.models import Q

logger = logging.getLogger(__name__)

SUPPORT = "support"
PLATFORM_ADMINS = "platform admins"

# Apps whose records operators look at; their models' view permissions go to every role.
CONSOLE_APPS = ("tenants", "apikeys", "cdn", "webhooks", "backups", "console")

ROLE_PERMISSIONS = {
    SUPPORT: {
        "operator": "redeliver_webhook invalidate_cdn verify_backup".split(),
        "model_actions": ["view"],
    },
    PLATFORM_ADMINS: {
        "operator": (
            "suspend_tenant revoke_apikey invalidate_cdn redeliver_webhook toggle_endpoint run_backup "
            "verify_backup restore_tenant"
        ).split(),
        "model_actions": ["view", "add", "change"],
    },
}


def roles_sync(*, using: str = "default") -> None:
    """Create the groups and set exactly the permissions of ROLE_PERMISSIONS (idempotent)."""
    from django.contrib.auth.models import Group, Permission

    with transaction.atomic(using=using):
        _roles_sync(Group.objects.db_manager(using), Permission.objects.db_manager(using))


def _roles_sync(groups, permissions) -> None:
    for name, spec in ROLE_PERMISSIONS.items():
        group, _ = groups.get_or_create(name=name)
        operator = permissions.filter(content_type__app_label="console", codename__in=spec["operator"])
        prefixes = Q()
        for model_action in spec["model_actions"]:
            prefixes |= Q(codename__startswith=f"{model_action}_")
        model_level = permissions.filter(prefixes, content_type__app_label__in=CONSOLE_APPS)
        group.permissions.set([*operator, *model_level])


def roles_sync_after_migrate(sender, app_config=None, using="default", **kwargs) -> None:
    # post_migrate fires once per app; the last one (ours or later) sees every permission.
    if app_config is None or app_config.label != "console":
        return
    roles_sync(using=using)
