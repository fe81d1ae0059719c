from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class DbRoutingConfig(AppConfig):
    name = "dbrouting"
    verbose_name = "Database routing"

    def ready(self):
        from observability.collectors import register_source

        from . import metrics

        # In this process's memory: collected on every scrape, so a rotation change shows at once.
        register_source("replicas", metrics.replica_families, metric_names=metrics.REPLICA_METRIC_NAMES, cached=False)
        if not settings.DATABASE_REPLICAS:
            return
        if settings.DATABASE_REPLICA_STICKY_SECONDS <= settings.DATABASE_REPLICA_MAX_LAG_SECONDS:
            # A client's position must outlive any lag a replica in rotation may have.
            raise ImproperlyConfigured(
                "DATABASE_REPLICA_STICKY_SECONDS must be greater than DATABASE_REPLICA_MAX_LAG_SECONDS"
            )
        from . import celery_signals

        celery_signals.connect()
