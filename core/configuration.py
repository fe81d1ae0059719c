"""Dataclasses of values read from Django settings, each field naming its setting beside it."""

import dataclasses
from typing import Any, Self

from django.conf import settings


def setting(name: str) -> Any:
    """A dataclass field that `from_settings` fills from settings.<name> (required when built by hand)."""
    return dataclasses.field(metadata={"setting": name})


class FromSettings:
    """Mixin for a dataclass whose fields are all `setting(...)`: `from_settings()` reads them now, so a test's
    settings override applies."""

    @classmethod
    def from_settings(cls) -> Self:
        return cls(**{item.name: getattr(settings, item.metadata["setting"]) for item in dataclasses.fields(cls)})
