"""CDN_BACKENDS handler: aliases built lazily from settings, like Django's caches/storages."""

import threading

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from .base import CdnBackend, CdnConfigurationError


class CdnBackendHandler:
    def __init__(self):
        self._backends: dict[str, CdnBackend] = {}
        self._lock = threading.Lock()

    def __getitem__(self, alias: str) -> CdnBackend:
        with self._lock:
            if alias not in self._backends:
                self._backends[alias] = self._build(alias)
            return self._backends[alias]

    def _build(self, alias: str) -> CdnBackend:
        configured = settings.CDN_BACKENDS
        if alias not in configured:
            raise CdnConfigurationError(
                f"CDN backend {alias!r} is not configured in CDN_BACKENDS (have: {', '.join(sorted(configured))})"
            )
        config = dict(configured[alias])
        path = config.pop("BACKEND", None)
        if not path:
            raise CdnConfigurationError(f"CDN_BACKENDS[{alias!r}] has no BACKEND")
        try:
            backend_class = import_string(path)
        except ImportError as exc:
            raise CdnConfigurationError(f"CDN_BACKENDS[{alias!r}]: cannot import {path!r}: {exc}") from exc
        return backend_class(alias=alias, **dict(config.get("OPTIONS") or {}))

    def reset(self) -> None:
        with self._lock:
            self._backends.clear()


cdn_backends = CdnBackendHandler()


def _reset_on_change(*, setting, **kwargs):
    if setting == "CDN_BACKENDS":
        cdn_backends.reset()


setting_changed.connect(_reset_on_change)
