"""The API's published description: /api/schema/ (OpenAPI) and /api/docs/ (Swagger UI).

Both are anonymous. The document is the same for every caller (it is public and we have one API
version and language), so it is built and rendered once per process and format: introspecting every
view costs ~50 ms of CPU, which an anonymous client could otherwise ask for in a loop. Query
parameters (`lang`, `version`) are ignored for the same reason: they would make the cache unbounded.

Every operation is described for its client by api_schema.DocumentedSchema (DEFAULT_SCHEMA_CLASS).

Swagger UI is the split view: its start-up script is a separate response, not inline, so the docs page
runs under the platform's Content-Security-Policy (no inline script).
"""

import threading

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView


class SchemaView(SpectacularAPIView):
    _documents: dict[str, tuple[bytes, str]] = {}
    _lock = threading.Lock()

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, exclude=True)
    def get(self, request, *args, **kwargs):
        renderer = request.accepted_renderer
        key = type(renderer).__name__  # one of renderer_classes: a bounded set
        document = self._documents.get(key)
        if document is None:
            with self._lock:
                document = self._documents.get(key) or self._build(renderer)
                self._documents[key] = document
        body, content_type = document
        disposition = f'inline; filename="{self._get_filename(request, None)}"'
        return HttpResponse(body, content_type=content_type, headers={"Content-Disposition": disposition})

    def _build(self, renderer) -> tuple[bytes, str]:
        generator = self.generator_class(urlconf=self.urlconf, api_version=None, patterns=self.patterns)
        data = generator.get_schema(request=None, public=self.serve_public)
        body = renderer.render(data, renderer.media_type, {"view": self})
        content_type = f"{renderer.media_type}; charset={renderer.charset}" if renderer.charset else renderer.media_type
        return body, content_type
