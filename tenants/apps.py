from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from . import checks  # noqa: F401 - registers the system checks
        from .plans import usage_plans_seed_after_migrate

        # Every tier has a plan to edit, also after a flush (tests) emptied the table the migration filled.
        post_migrate.connect(usage_plans_seed_after_migrate, sender=self, dispatch_uid="tenants-usage-plans-seed")
