from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Operator console"

    def ready(self):
        import unfold.fields

        from .display import json_block
        from .roles import roles_sync_after_migrate

        # unfold's read-only JSON is coloured with inline styles, refused by the CSP: plain <pre> instead.
        unfold.fields.prettify_json = json_block

        # After every app's permissions exist (auth creates them on post_migrate before us).
        post_migrate.connect(roles_sync_after_migrate, dispatch_uid="console-roles-sync")
