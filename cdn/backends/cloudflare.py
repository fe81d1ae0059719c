"""Cloudflare: POST /zones/{zone_id}/purge_cache (Instant Purge, done when the API says success).

Exact paths are purged as full URLs (`files`) for every hostname of the website, in chunks of
MAX_FILES_PER_REQUEST (the per-request operation limit of the plan); wildcards become `prefixes`
(`host/path/`), and a whole-site purge becomes `hosts`. Requests are spaced to the plan's rate
(REQUESTS_PER_SECOND) and a 429 is honoured through its Retry-After.
"""

import json
import logging
import threading
import time
import urllib.error
import urllib.request

from .base import CdnBackend, CdnConfigurationError, CdnError, CdnRejected, CdnThrottled, InvalidationResult, Site

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.cloudflare.com/client/v4"


class CloudflareBackend(CdnBackend):
    supports_wildcards = True

    def __init__(self, alias: str = "default", **options):
        self.api_token = self._require_token(alias, options)
        self.api_url = options.pop("API_URL", DEFAULT_API_URL).rstrip("/")
        if not self.api_url.startswith(("https://", "http://")):
            raise CdnConfigurationError(f"CDN_BACKENDS[{alias!r}]: OPTIONS['API_URL'] must be an http(s) URL")
        self.zone_id = options.pop("ZONE_ID", "")
        # Free/Pro/Business allow 100 operations per purge request (Enterprise 500); 30 was the long-time
        # limit and stays the safe default.
        self.max_files_per_request = int(options.pop("MAX_FILES_PER_REQUEST", 30))
        self.max_prefixes_per_request = int(options.pop("MAX_PREFIXES_PER_REQUEST", 30))
        self.requests_per_second = float(options.pop("REQUESTS_PER_SECOND", 5))
        self.max_wait_seconds = float(options.pop("MAX_RETRY_AFTER_SECONDS", 10))
        self.timeout = float(options.pop("TIMEOUT_SECONDS", 10))
        # Where prefix purge is not available, changed paths are never collapsed into wildcards and
        # a requested wildcard purges the website's hostnames instead.
        self.supports_wildcards = bool(options.pop("PURGE_PREFIXES", True))
        super().__init__(alias, **options)
        self._lock = threading.Lock()
        self._next_request_at = 0.0

    @staticmethod
    def _require_token(alias: str, options: dict) -> str:
        token = options.pop("API_TOKEN", "")
        if not token:
            raise CdnConfigurationError(f"CDN_BACKENDS[{alias!r}]: OPTIONS['API_TOKEN'] is required")
        return token

    def target(self, site: Site) -> str:
        zone_id = site.config.get("zone_id") or self.zone_id
        if not zone_id:
            raise CdnConfigurationError(f"website {site.website_id} has no Cloudflare zone_id")
        return zone_id

    def invalidate(self, site: Site, paths: list[str]) -> InvalidationResult:
        zone_id = self.target(site)
        if not site.hostnames:
            raise CdnError("the website has no hostnames; Cloudflare purges by URL")
        ids = []
        for body in self._bodies(site, paths):
            ids.append(self._purge(zone_id, body))
        return InvalidationResult(provider_id=",".join(dict.fromkeys(ids)), completed=True)

    def _bodies(self, site: Site, paths: list[str]):
        files, prefixes, whole_site = [], [], False
        for path in paths:
            if path == "/*" or (path.endswith("*") and not self.supports_wildcards):
                whole_site = True
            elif path.endswith("*"):
                prefixes.extend(f"{host}{path[:-1]}" for host in site.hostnames)
            else:
                files.extend(f"https://{host}{path}" for host in site.hostnames)
        if whole_site:
            yield {"hosts": list(site.hostnames)}
            return
        for start in range(0, len(prefixes), self.max_prefixes_per_request):
            yield {"prefixes": prefixes[start : start + self.max_prefixes_per_request]}
        for start in range(0, len(files), self.max_files_per_request):
            yield {"files": files[start : start + self.max_files_per_request]}

    def _pace(self) -> None:
        with self._lock:
            now = time.monotonic()
            wait = self._next_request_at - now
            self._next_request_at = max(now, self._next_request_at) + 1.0 / self.requests_per_second
        if wait > 0:
            time.sleep(wait)

    def _purge(self, zone_id: str, body: dict) -> str:
        url = f"{self.api_url}/zones/{zone_id}/purge_cache"
        data = json.dumps(body).encode()
        for _attempt in range(3):
            self._pace()
            # The scheme is checked in __init__ (http/https only).
            request = urllib.request.Request(  # noqa: S310
                url,
                data=data,
                method="POST",
                headers={"Authorization": f"Bearer {self.api_token}", "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    payload = json.loads(response.read() or b"{}")
            except urllib.error.HTTPError as exc:
                payload = _json_or_empty(exc.read())
                if exc.code == 429:
                    retry_after = float(exc.headers.get("Retry-After") or 5)
                    if retry_after <= self.max_wait_seconds:
                        time.sleep(retry_after)
                        continue
                    raise CdnThrottled("Cloudflare rate limit reached", retry_after=retry_after) from exc
                error = CdnRejected if 400 <= exc.code < 500 else CdnError
                raise error(f"Cloudflare refused the purge (HTTP {exc.code}): {_errors(payload)}") from exc
            except (OSError, ValueError) as exc:
                raise CdnError(f"Cloudflare unreachable: {exc.__class__.__name__}: {exc}") from exc
            if not payload.get("success"):
                raise CdnRejected(f"Cloudflare refused the purge: {_errors(payload)}")
            return str((payload.get("result") or {}).get("id", zone_id))
        raise CdnThrottled("Cloudflare rate limit persisted", retry_after=30)


def _json_or_empty(raw: bytes) -> dict:
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        return {}


def _errors(payload: dict) -> str:
    errors = payload.get("errors") or []
    return "; ".join(f"{error.get('code')}: {error.get('message')}" for error in errors) or "no error detail"
