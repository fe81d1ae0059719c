"""The one pluggable-backend pattern (shared/STYLE.md) for CDN backends and backup engines.

Settings are shaped like Django's STORAGES: {alias: {"BACKEND": "dotted.path", "OPTIONS": {...}}}. An
alias is built once, lazily, as cls(alias=alias, **OPTIONS); every configuration mistake raises the
capability's ImproperlyConfigured subclass with a message naming the setting and the alias.
"""

import threading
from typing import Generic, TypeVar

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

Backend = TypeVar("Backend")


class BackendHandler(Generic[Backend]):
    def __init__(self, setting_name: str, error: type[Exception]):
        self.setting_name = setting_name
        self.error = error
        self._built: dict[str, Backend] = {}
        self._lock = threading.Lock()
        setting_changed.connect(self._reset_on_change, weak=False)

    def __getitem__(self, alias: str) -> Backend:
        with self._lock:
            if alias not in self._built:
                self._built[alias] = self._build(alias)
            return self._built[alias]

    def _build(self, alias: str) -> Backend:
        configured = getattr(settings, self.setting_name)
        if alias not in configured:
            raise self.error(
                f"{alias!r} is not one of the aliases in {self.setting_name} "
                f"({', '.join(sorted(configured))}); it is not configured"
            )
        config = dict(configured[alias])
        path = config.pop("BACKEND", None)
        if not path:
            raise self.error(f"{self.setting_name}[{alias!r}] has no BACKEND")
        try:
            backend_class = import_string(path)
        except ImportError as exc:
            raise self.error(f"{self.setting_name}[{alias!r}]: cannot import {path!r}: {exc}") from exc
        try:
            return backend_class(alias=alias, **dict(config.get("OPTIONS") or {}))
        except TypeError as exc:
            raise self.error(f"{self.setting_name}[{alias!r}]: bad OPTIONS for {path}: {exc}") from exc

    def reset(self) -> None:
        """Forget built backends (settings changed)."""
        with self._lock:
            self._built.clear()

    def _reset_on_change(self, *, setting, **kwargs) -> None:
        if setting == self.setting_name:
            self.reset()
