from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class PlatformSiteConfig(AppConfig):
    name = "platform_site"
    verbose_name = "Platform"

    def ready(self):
        if settings.DATABASE_REPLICAS:
            if settings.DATABASE_REPLICA_STICKY_SECONDS <= settings.DATABASE_REPLICA_MAX_LAG_SECONDS:
                # A client's position must outlive any lag a replica in rotation may have.
                raise ImproperlyConfigured(
                    "DATABASE_REPLICA_STICKY_SECONDS must be greater than DATABASE_REPLICA_MAX_LAG_SECONDS"
                )
            from . import db_tasks

            # The monitor's gauges are exported by platform_site/metrics.py at scrape time.
            db_tasks.connect()
