from django.apps import AppConfig


class BackupsConfig(AppConfig):
    name = "backups"
    verbose_name = "Backups and recovery"

    def ready(self) -> None:
        from observability.collectors import register_source

        from . import metrics

        register_source("wal_archiver", metrics.wal_archive_families, metric_names=metrics.WAL_ARCHIVER_METRIC_NAMES)
        register_source("backups", metrics.backup_families, metric_names=metrics.BACKUP_METRIC_NAMES)
