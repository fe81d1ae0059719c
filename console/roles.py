"""The operator roles: one map from role to the actions it allows, checked by the admin, the REST API and
the management commands alike (`operator_may`).

An action is a Django permission: a model's view/add/change/delete, or an operator permission of
console/models.py (suspend_tenant, change_tier, ...). A role is a Django group kept in step with this
table after every migrate. A staff account with no role may do nothing beyond what is granted to it
explicitly (a permission given to the account itself).

Support looks at everything and redelivers webhooks; platform admins do the rest: suspend, change tiers,
revoke and rotate keys, invalidate and configure the CDN, restore and delete.
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
        "operator": ["redeliver_webhook"],
        "model_actions": ["view"],
        "models": [],
    },
    PLATFORM_ADMINS: {
        "operator": (
            "suspend_tenant change_tier revoke_apikey invalidate_cdn configure_cdn redeliver_webhook "
            "toggle_endpoint run_backup verify_backup restore_tenant"
        ).split(),
        "model_actions": ["view", "add", "change"],
        # Deletes that a service performs, with the gateway, webhooks and the audit log (never a bare
        # row delete): the admin's delete and the API's DELETE call it.
        "models": ["tenants.delete_tenant", "tenants.delete_website", "webhooks.delete_endpoint"],
    },
}


def operator_may(user, permission: str) -> bool:
    """The one check of every surface: an active staff account holding `permission` ("app.codename"),
    through its role or granted to it explicitly (a superuser holds every permission)."""
    return bool(user is not None and user.is_active and user.is_staff and user.has_perm(permission))


def role_may(role: str, permission: str) -> bool:
    """Whether a role (a group of this table) holds `permission`, as synchronised in the database."""
    from django.contrib.auth.models import Permission

    app_label, _, codename = permission.partition(".")
    return Permission.objects.filter(group__name=role, content_type__app_label=app_label, codename=codename).exists()


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
        named = Q(pk__in=[])
        for permission in spec["models"]:
            app_label, codename = permission.split(".")
            named |= Q(content_type__app_label=app_label, codename=codename)
        group.permissions.set([*operator, *model_level, *permissions.filter(named)])


def roles_sync_after_migrate(sender, app_config=None, using="default", **kwargs) -> None:
    # post_migrate fires once per app; the last one (ours or later) sees every permission.
    if app_config is None or app_config.label != "console":
        return
    roles_sync(using=using)
