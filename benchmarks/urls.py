"""One view, mounted once per variant: only authentication, permission and throttle differ."""

from django.urls import include, path
from rest_framework.authentication import TokenAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle
from rest_framework.views import APIView
from rest_framework_api_key.permissions import HasAPIKey

from apikeys.authentication import ApiKeyAuthentication
from apikeys.permissions import HasScope


class PingView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    def get(self, request):
        return Response({"ok": True})


class TokenFree(UserRateThrottle):
    scope, rate = "bench_free", "100/min"


class TokenEnterprise(UserRateThrottle):
    scope, rate = "bench_enterprise", "50000/min"


class ApiKeyEnterprise(AnonRateThrottle):
    scope, rate = "bench_apikey", "50000/min"


def variant(name, **attributes):
    return path(f"{name}/", type(f"Ping_{name}", (PingView,), attributes).as_view())


bench = [
    variant("none"),
    variant("gateway", authentication_classes=[ApiKeyAuthentication], permission_classes=[HasScope("usage:read")]),
    variant(
        "drf-token-free",
        authentication_classes=[TokenAuthentication],
        permission_classes=[IsAuthenticated],
        throttle_classes=[TokenFree],
    ),
    variant(
        "drf-token-enterprise",
        authentication_classes=[TokenAuthentication],
        permission_classes=[IsAuthenticated],
        throttle_classes=[TokenEnterprise],
    ),
    variant("drf-api-key", permission_classes=[HasAPIKey], throttle_classes=[ApiKeyEnterprise]),
]

urlpatterns = [path("api/v1/bench/", include(bench)), path("", include("platform_site.urls"))]
