from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "observability"

    def ready(self):
        from .collectors import queue_families, register_source

        register_source("broker", queue_families, metric_names={"celery_queue_length"})
