"""REST API for a tenant's API keys and usage."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api_schema import CONFLICT
from core.exceptions import ApplicationError
from tenants.api import UUID_PATTERN, acting_tenant, target_tenant

from . import selectors, services
from .middleware import guard_anonymous
from .permissions import HasScope, api_key_of, operator_write
from .serializers import (
    ApiKeyCreatedOutput,
    ApiKeyCreateInput,
    ApiKeyOutput,
    ApiKeyRevokeInput,
    ApiKeyRotateInput,
    UsageOutput,
    UsageQueryInput,
)


def _validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _actor(request) -> str:
    api_key = api_key_of(request)
    return f"api-key:{api_key.id}" if api_key else f"user:{request.user.get_username()}"


def _granting_scopes(request) -> frozenset[str] | None:
    """The scopes of the key asking for a key (None for an operator): a key never yields more than it holds."""
    caller = api_key_of(request)
    return None if caller is None else caller.scopes


def _creation_allowed(request) -> None:
    """Creations and rotations share one budget per client address."""
    if guard_anonymous(request, group="apikey-create", rate=settings.API_KEY_CREATE_RATE, increment=True):
        raise ApplicationError("rate_limited", "Too many keys created; try again later.", status_code=429)


@extend_schema(tags=["API keys"])
@extend_schema_view(
    list=extend_schema(summary="List API keys", description="Never the keys themselves: prefix and last four."),
    retrieve=extend_schema(summary="Read an API key"),
)
class ApiKeyViewSet(viewsets.GenericViewSet):
    """The tenant's API keys: list (prefix and last four only), create, rotate, revoke."""

    lookup_value_regex = UUID_PATTERN
    serializer_class = ApiKeyOutput
    filter_backends = []  # the list takes no filters
    permission_classes = [HasScope("keys:manage")]
    operator_permissions = {
        "list": "apikeys.view_apikey",
        "retrieve": "apikeys.view_apikey",
        "create": "apikeys.add_apikey",
        "revoke": "console.revoke_apikey",
        "rotate": "console.revoke_apikey",
    }

    def get_queryset(self):
        return selectors.apikey_list(tenant=acting_tenant(self.request))

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ApiKeyOutput(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(ApiKeyOutput(self.get_object()).data)

    @extend_schema(
        summary="Create an API key", request=ApiKeyCreateInput, responses={201: ApiKeyCreatedOutput, 409: CONFLICT},
        description="The response holds the full key, once (`Cache-Control: no-store`). A key creates keys "
        "only with scopes it holds itself; creations count against a per-address budget (429).",
    )  # fmt: skip
    def create(self, request):
        _creation_allowed(request)
        data = _validated(ApiKeyCreateInput, request.data)
        tenant = target_tenant(request, data.pop("tenant", None))
        caller = api_key_of(request)
        with operator_write(self, action="apikey.create", detail={**data, "tenant": str(tenant.pk)}) as audit:
            api_key, raw_key = services.apikey_create(
                tenant=tenant, created_by=request.user if caller is None else None,
                granting_scopes=_granting_scopes(request), **data,
            )  # fmt: skip
            audit.target = api_key
        body = ApiKeyCreatedOutput(api_key, context={"raw_key": raw_key}).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})

    @extend_schema(
        summary="Revoke an API key", request=ApiKeyRevokeInput, responses={200: ApiKeyOutput, 409: CONFLICT},
        description="Refused from the next request, in every process.",
    )  # fmt: skip
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        data = _validated(ApiKeyRevokeInput, request.data)
        api_key = self.get_object()
        with operator_write(self, action="apikey.revoke", target=api_key, reason=data["reason"]):
            api_key = services.apikey_revoke(api_key=api_key, revoked_by=_actor(request), **data)
        return Response(ApiKeyOutput(api_key).data)

    @extend_schema(
        summary="Rotate an API key", request=ApiKeyRotateInput, responses={201: ApiKeyCreatedOutput, 409: CONFLICT},
        description="A new key with the same scopes and limit (shown once); the old one keeps working for "
        "`grace_seconds`.",
    )  # fmt: skip
    @action(detail=True, methods=["post"])
    def rotate(self, request, pk=None):
        _creation_allowed(request)
        data = _validated(ApiKeyRotateInput, request.data)
        old = self.get_object()
        caller = api_key_of(request)
        with operator_write(self, action="apikey.rotate", target=old, detail=data) as audit:
            new, raw_key = services.apikey_rotate(
                api_key=old, rotated_by=request.user if caller is None else None,
                granting_scopes=_granting_scopes(request), **data,
            )  # fmt: skip
            audit.detail["new_key"] = str(new.pk)
        body = ApiKeyCreatedOutput(new, context={"raw_key": raw_key}).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})


class UsageView(APIView):
    """The tenant's API usage per minute and per key (rolled up once a minute), and this month's units
    against its quota, per tenant and per key."""

    permission_classes = [HasScope("usage:read")]
    operator_permissions = {"GET": "apikeys.view_apiusageminute"}

    @extend_schema(
        tags=["Usage"], summary="Read the tenant's API usage", parameters=[UsageQueryInput], responses=UsageOutput,
        description="Requests per minute and per key over the last `minutes`, rolled up once a minute. "
        "The limits themselves are on every response: `X-RateLimit-Limit`, `X-RateLimit-Remaining`, "
        "`RateLimit-Policy`.",
    )  # fmt: skip
    def get(self, request):
        # A plain dict: an empty value (`?minutes=`) is then refused rather than taken as absent.
        data = _validated(UsageQueryInput, request.query_params.dict())
        tenant = target_tenant(request, data.get("tenant"))
        since = timezone.now() - timedelta(minutes=data["minutes"])
        body = selectors.usage_summary(tenant=tenant, since=since)
        body["quota"] = selectors.quota_summary(tenant=tenant)
        return Response(body)
