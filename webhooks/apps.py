from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self):
        from observability.collectors import register_source

        from . import (
            checks,  # noqa: F401 - registers the system checks
            metrics,
        )

        register_source("webhooks", metrics.breaker_families, metric_names=metrics.BREAKER_METRIC_NAMES)
