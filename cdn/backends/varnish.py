"""Varnish, or any HTTP cache speaking PURGE/BAN (deploy/varnish/default.vcl): one or more nodes.

An exact path is a PURGE of that URL and of its slash/no-slash pair (`/new/` and `/new`: one is a
redirect to the other, or a cached 404 from before) for each hostname of the website and its preview
host; the VCL keys objects by normalised Host and the path without its query string, so the PURGE also
drops every `?query` variant. A wildcard `/a/*` is a BAN of the URL regex `^/a/` for those hosts. Every
node must acknowledge with 200. Paths arrive canonical (cdn.paths): ASCII, percent-encoded once.
"""

import http.client
import re
import uuid
from urllib.parse import urlsplit

from .base import CdnBackend, CdnConfigurationError, CdnError, CdnRejected, InvalidationResult, Site


class VarnishBackend(CdnBackend):
    supports_wildcards = True

    def __init__(self, alias: str = "default", **options):
        nodes = options.pop("NODES", None) or ([options.pop("URL")] if options.get("URL") else [])
        if not nodes:
            raise CdnConfigurationError(f"CDN_BACKENDS[{alias!r}]: OPTIONS['NODES'] (list of URLs) is required")
        self.nodes = [urlsplit(node) for node in nodes]
        self.timeout = float(options.pop("TIMEOUT_SECONDS", 5))
        super().__init__(alias, **options)

    def target(self, site: Site) -> str:
        return ",".join(node.netloc for node in self.nodes)

    @staticmethod
    def _with_pairs(paths: list[str]) -> list[str]:
        expanded = []
        for path in paths:
            expanded.append(path)
            if not path.endswith("*") and path != "/":
                expanded.append(path[:-1] if path.endswith("/") else path + "/")
        return list(dict.fromkeys(expanded))

    def _requests(self, site: Site, paths: list[str]):
        hosts = [*site.hostnames, site.preview_host] if site.preview_host else list(site.hostnames)
        for path in self._with_pairs(paths):
            for host in hosts:
                if path.endswith("*"):
                    yield "BAN", host, {"X-Ban-Url": "^" + re.escape(path[:-1])}, path
                else:
                    yield "PURGE", host, {}, path

    def invalidate(self, site: Site, paths: list[str]) -> InvalidationResult:
        requests = list(self._requests(site, paths))
        for node in self.nodes:
            connection = http.client.HTTPConnection(node.hostname, node.port or 80, timeout=self.timeout)
            try:
                for method, host, headers, url in requests:
                    try:
                        connection.request(method, url.replace("*", ""), headers={"Host": host, **headers})
                        response = connection.getresponse()
                        response.read()
                    except OSError as exc:
                        raise CdnError(f"Varnish node {node.netloc} unreachable: {exc}") from exc
                    if 400 <= response.status < 500:
                        raise CdnRejected(f"Varnish node {node.netloc} refused {method} {url}: {response.status}")
                    if response.status != 200:
                        raise CdnError(f"Varnish node {node.netloc} answered {response.status} to {method} {url}")
            finally:
                connection.close()
        return InvalidationResult(provider_id=f"varnish-{uuid.uuid4().hex[:12]}", completed=True)
