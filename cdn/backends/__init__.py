"""CDN_BACKENDS handler: aliases built lazily from settings, like Django's caches/storages."""

from core.backends import BackendHandler

from .base import CdnBackend, CdnConfigurationError

cdn_backends: BackendHandler[CdnBackend] = BackendHandler("CDN_BACKENDS", CdnConfigurationError)
