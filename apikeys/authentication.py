"""DRF authentication from what the gateway middleware found: no second lookup."""

from rest_framework.authentication import BaseAuthentication


class ApiKeyPrincipal:
    """request.user for a request made with an API key: the tenant's developer, never staff."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, api_key):
        self.api_key = api_key

    def __str__(self) -> str:
        return f"api-key:{self.api_key.id}"

    @property
    def username(self) -> str:
        return str(self)


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer <key>` or `X-API-Key`, already verified by apikeys.middleware."""

    def authenticate(self, request):
        api_key = getattr(request._request, "api_key", None)
        if api_key is None:
            return None
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request):
        # Makes DRF answer 401 (not 403) when no credentials were sent.
        return 'Bearer realm="api"'
