from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants and websites"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from observability.collectors import register_source

        from . import (
            checks,  # noqa: F401 - registers the system checks
            metrics,
        )
        from .plans import usage_plans_seed_after_migrate

        register_source("database", metrics.database_families, metric_names=metrics.DATABASE_METRIC_NAMES)
        register_source("tenant_usage", metrics.tenant_usage_families, metric_names=metrics.USAGE_METRIC_NAMES)
        # Every tier has a plan to edit, also after a flush (tests) emptied the table the migration filled.
        post_migrate.connect(usage_plans_seed_after_migrate, sender=self, dispatch_uid="tenants-usage-plans-seed")
