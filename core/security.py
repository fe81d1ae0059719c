"""Security headers of the platform host's responses (admin, console, API, docs, static files).

django-csp writes CONTENT_SECURITY_POLICY on pages; anything that is not HTML (the API's JSON, the
schema, static files) gets a policy that allows nothing at all, so a response rendered as a document by
mistake can run nothing. Cross-Origin-Resource-Policy keeps other sites (tenant sites included) from
embedding these responses as images, scripts or frames. Tenant responses never pass through here: the
origin answers them earlier in the middleware chain.
"""

from csp.middleware import CSPMiddleware, PolicyParts

NOTHING_ALLOWED = {"default-src": ["'none'"], "base-uri": ["'none'"], "form-action": ["'none'"],
                   "frame-ancestors": ["'none'"]}  # fmt: skip


class PlatformHeadersMiddleware(CSPMiddleware):
    def get_policy_parts(self, request, response, report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only=report_only)
        if not report_only and not response.get("Content-Type", "").startswith("text/html"):
            parts.config, parts.update, parts.replace = NOTHING_ALLOWED, None, None
        return parts

    def process_response(self, request, response):
        response = super().process_response(request, response)
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response
