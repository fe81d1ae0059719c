from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants and websites"

    def ready(self) -> None:
        from observability.collectors import register_source

        from . import (
            checks,  # noqa: F401 - registers the system checks
            metrics,
        )

        register_source("database", metrics.database_families, metric_names=metrics.DATABASE_METRIC_NAMES)
        register_source("tenant_usage", metrics.tenant_usage_families, metric_names=metrics.USAGE_METRIC_NAMES)
