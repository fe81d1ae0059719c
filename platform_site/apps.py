from django.apps import AppConfig
from django.conf import settings


class PlatformSiteConfig(AppConfig):
    name = "platform_site"
    verbose_name = "Platform"

    def ready(self):
        if settings.DATABASE_REPLICAS:
            from prometheus_client import REGISTRY

            from . import db_tasks
            from .replica_monitor import ReplicaCollector

            db_tasks.connect()
            REGISTRY.register(ReplicaCollector())
