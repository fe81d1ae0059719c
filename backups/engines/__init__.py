"""The backup-engine handler: settings.BACKUP_ENGINES in the STORAGES shape, BACKUP_ENGINE picks one.

Same shape as the CDN backends (shared/STYLE.md): pop BACKEND, import_string it, build cls(**OPTIONS)
lazily, and fail with a clear ImproperlyConfigured subclass for a bad path or a missing option.
"""

from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .base import BackupEngine


class InvalidBackupEngineError(ImproperlyConfigured):
    pass


@cache
def _build(alias: str) -> BackupEngine:
    engines = settings.BACKUP_ENGINES
    if alias not in engines:
        raise InvalidBackupEngineError(f"BACKUP_ENGINE={alias!r} is not one of BACKUP_ENGINES: {sorted(engines)}")
    config = dict(engines[alias])
    path = config.pop("BACKEND", None)
    if not path:
        raise InvalidBackupEngineError(f"BACKUP_ENGINES[{alias!r}] has no BACKEND")
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise InvalidBackupEngineError(f"BACKUP_ENGINES[{alias!r}]: cannot import {path!r}: {exc}") from exc
    try:
        return cls(alias=alias, **config.get("OPTIONS", {}))
    except TypeError as exc:
        raise InvalidBackupEngineError(f"BACKUP_ENGINES[{alias!r}]: bad OPTIONS for {path}: {exc}") from exc


def get_engine(alias: str | None = None) -> BackupEngine:
    return _build(alias or settings.BACKUP_ENGINE)


def reset_engines() -> None:
    """Forget built engines (tests change settings)."""
    _build.cache_clear()
