import threading
import uuid

from .base import CdnBackend, InvalidationResult, Site


class DummyBackend(CdnBackend):
    """Purges nothing, records what it was asked (embedded mode and tests)."""

    calls: list[tuple[str, tuple[str, ...], list[str]]] = []
    _lock = threading.Lock()

    def invalidate(self, site: Site, paths: list[str]) -> InvalidationResult:
        with self._lock:
            DummyBackend.calls.append((site.website_id, site.hostnames, list(paths)))
        return InvalidationResult(provider_id=f"dummy-{uuid.uuid4().hex[:12]}", completed=True)
