"""The backup-engine handler: settings.BACKUP_ENGINES in the STORAGES shape, BACKUP_ENGINE picks one.

The same handler as the CDN backends (core/backends.py, shared/STYLE.md).
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from core.backends import BackendHandler

from .base import BackupEngine


class InvalidBackupEngineError(ImproperlyConfigured):
    pass


backup_engines: BackendHandler[BackupEngine] = BackendHandler("BACKUP_ENGINES", InvalidBackupEngineError)


def get_engine(alias: str | None = None) -> BackupEngine:
    return backup_engines[alias or settings.BACKUP_ENGINE]


def reset_engines() -> None:
    """Forget built engines (tests change settings)."""
    backup_engines.reset()
