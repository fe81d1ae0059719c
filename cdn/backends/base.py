"""The CDN backend contract (Wagtail frontend_cache's shape: one request method, capabilities declared
as attributes). Batching across paths and requests is the planner's job (cdn/batching.py), so backends
have no batch method of their own."""

from dataclasses import dataclass, field

from django.core.exceptions import ImproperlyConfigured


class CdnError(Exception):
    """A provider refused or failed a request; the message is safe to show and store."""


class CdnRejected(CdnError):
    """The provider refused the request itself (bad credentials, unknown distribution, invalid path):
    sending it again cannot help, so it fails at once instead of being retried."""


class CdnThrottled(CdnError):
    """The provider asked us to wait (rate limit, too many invalidations in progress)."""

    def __init__(self, message: str, *, retry_after: float = 30.0):
        super().__init__(message)
        self.retry_after = retry_after


class CdnConfigurationError(ImproperlyConfigured):
    pass


@dataclass(frozen=True)
class Site:
    """What a backend needs to know about a website: its id, the hostnames it is (or was until this purge)
    served under, its preview host (`<id>.SITES_PREVIEW_DOMAIN`, cached by caches in front of the origin
    such as Varnish) and its provider ids."""

    website_id: str
    hostnames: tuple[str, ...]
    config: dict = field(default_factory=dict)
    preview_host: str = ""


@dataclass(frozen=True)
class InvalidationResult:
    provider_id: str
    completed: bool


class CdnBackend:
    # Capabilities and provider limits; None means unlimited.
    supports_wildcards = True
    max_paths_per_request: int | None = None
    max_wildcards_per_request: int | None = None
    max_paths_in_progress: int | None = None
    max_wildcards_in_progress: int | None = None

    def __init__(self, alias: str = "default", **options):
        self.alias = alias
        if options:
            raise CdnConfigurationError(
                f"CDN_BACKENDS[{alias!r}]: unknown option(s) {', '.join(sorted(options))} for {type(self).__name__}"
            )

    def target(self, site: Site) -> str:
        """The provider-side id purged for this site (distribution, zone, ...); '' when not applicable."""
        return ""

    def invalidate(self, site: Site, paths: list[str]) -> InvalidationResult:
        """Send one invalidation request for paths (already collapsed and within the request limits)."""
        raise NotImplementedError

    def status(self, site: Site, provider_id: str) -> str:
        """'completed' or 'in_progress'; providers that purge synchronously are always completed."""
        return "completed"

    def _require(self, options: dict, name: str):
        if options.get(name) in (None, ""):
            raise CdnConfigurationError(f"CDN_BACKENDS[{self.alias!r}]: OPTIONS[{name!r}] is required")
        return options.pop(name)
