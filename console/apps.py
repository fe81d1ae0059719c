from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Operator console"

    def ready(self):
        from .roles import roles_sync_after_migrate

        # After every app's permissions exist (auth creates them on post_migrate before us).
        post_migrate.connect(roles_sync_after_migrate, dispatch_uid="console-roles-sync")
