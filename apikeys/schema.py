"""The API key as an OpenAPI security scheme, so /api/schema/ and Swagger UI say how to authenticate."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "apikeys.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (plk_live_… / plk_test_…) as `Authorization: Bearer <key>`; "
            "`X-API-Key: <key>` is accepted too.",
        }
