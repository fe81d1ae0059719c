"""Webhooks API (tenant-scoped; scope `webhooks:manage`): validate, call one service, render."""

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from apikeys.permissions import HasScope, operator_write
from core.api_schema import CONFLICT
from core.exceptions import ApplicationError
from core.ordering import StrictOrderingFilter
from tenants.api import UUID_PATTERN, acting_tenant, target_tenant

from . import catalogue, selectors, services
from .filters import DeliveryFilter, EndpointFilter
from .models import Delivery
from .serializers import (
    DeliveryOutput,
    EndpointCreateInput,
    EndpointOutput,
    EndpointUpdateInput,
    EndpointWithSecretOutput,
    EventTypeOutput,
    PingOutput,
    ReplayInput,
    ReplayOutput,
    RotateSecretInput,
    SigningKeySetOutput,
    SigningKeysQuery,
)

# An API key holding webhooks:manage, or an operator whose role allows the view's operator_permissions.
WEBHOOK_PERMISSIONS = [HasScope("webhooks:manage")]


def _validated(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _with_secret(endpoint, secret: str) -> dict:
    endpoint.secret = secret
    return EndpointWithSecretOutput(endpoint).data


@extend_schema(tags=["Webhooks"])
@extend_schema_view(
    list=extend_schema(
        summary="List webhook endpoints",
        # A boolean as the client sends it (`true`/`false`), not the choice the filter checks it with.
        parameters=[
            OpenApiParameter("is_active", bool, description="Only the active (true) or inactive (false) ones.")
        ],
    ),
    retrieve=extend_schema(summary="Read a webhook endpoint"),
    destroy=extend_schema(summary="Delete a webhook endpoint"),
)
class EndpointViewSet(viewsets.GenericViewSet):
    permission_classes = WEBHOOK_PERMISSIONS
    operator_permissions = {
        "list": "webhooks.view_endpoint",
        "retrieve": "webhooks.view_endpoint",
        "deliveries": "webhooks.view_delivery",
        "create": "webhooks.add_endpoint",
        "partial_update": "webhooks.change_endpoint",
        "destroy": "webhooks.delete_endpoint",
        "rotate_secret": "webhooks.change_endpoint",
        "ping": "console.redeliver_webhook",
        "replay": "console.redeliver_webhook",
    }
    lookup_value_regex = UUID_PATTERN
    serializer_class = EndpointOutput
    filter_backends = [DjangoFilterBackend, StrictOrderingFilter]
    filterset_class = EndpointFilter
    ordering_fields = ["created_at", "url"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return selectors.endpoint_list(tenant=acting_tenant(self.request))

    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(EndpointOutput(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(EndpointOutput(self.get_object()).data)

    @extend_schema(
        summary="Create a webhook endpoint", request=EndpointCreateInput,
        responses={201: EndpointWithSecretOutput, 409: CONFLICT},
        description="The response holds the signing `secret`, once. `url` must be https and reach a public "
        "address; `event_types` are names of the catalogue, prefix wildcards (`deployment.*`) or `*`.",
    )  # fmt: skip
    def create(self, request):
        data = _validated(EndpointCreateInput, request)
        tenant = target_tenant(request, data.pop("tenant", None))
        with operator_write(self, action="endpoint.create", detail={**data, "tenant": str(tenant.pk)}) as audit:
            endpoint, secret = services.endpoint_create(tenant=tenant, **data)
            audit.target = endpoint
        return Response(_with_secret(endpoint, secret), status=status.HTTP_201_CREATED)

    @extend_schema(summary="Change a webhook endpoint", request=EndpointUpdateInput, responses={200: EndpointOutput})
    def partial_update(self, request, pk=None):
        data = _validated(EndpointUpdateInput, request)
        endpoint = self.get_object()
        with operator_write(self, action="endpoint.update", target=endpoint, detail=data):
            endpoint = services.endpoint_update(endpoint=endpoint, **data)
        return Response(EndpointOutput(endpoint).data)

    def destroy(self, request, pk=None):
        endpoint = self.get_object()
        with operator_write(self, action="endpoint.delete", target=endpoint, detail={"url": endpoint.url}):
            services.endpoint_delete(endpoint=endpoint)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Rotate an endpoint's signing secret", request=RotateSecretInput,
        responses={200: EndpointWithSecretOutput},
        description="The new secret is in the response, once; the old one also signs for `grace_seconds`.",
    )  # fmt: skip
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        data = _validated(RotateSecretInput, request)
        endpoint = self.get_object()
        with operator_write(self, action="endpoint.rotate_secret", target=endpoint, detail=data):
            secret = services.endpoint_rotate_secret(endpoint=endpoint, **data)
        endpoint.refresh_from_db()
        return Response(_with_secret(endpoint, secret))

    # Documented as a delivery until the schema was fuzzed (tests/hardening/test_fuzzing.py): it is an event id.
    @extend_schema(
        summary="Send a test ping", request=None, responses={202: PingOutput},
        description="Queues a `ping` event for this endpoint only.",
    )  # fmt: skip
    @action(detail=True, methods=["post"])
    def ping(self, request, pk=None):
        endpoint = self.get_object()
        with operator_write(self, action="endpoint.ping", target=endpoint) as audit:
            event = services.endpoint_ping(endpoint=endpoint)
            audit.detail["event"] = str(event.pk)
        return Response({"event_id": str(event.pk)}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="List an endpoint's deliveries", tags=["Webhook deliveries"], responses=DeliveryOutput(many=True),
        parameters=[OpenApiParameter("status", enum=Delivery.Status.values, description="Only those in this state.")],
    )  # fmt: skip
    @action(detail=True, methods=["get"], filter_backends=[])  # `status` only, below
    def deliveries(self, request, pk=None):
        queryset = selectors.delivery_list(endpoint=self.get_object())
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in Delivery.Status.values:
                raise ApplicationError("invalid", "The request is invalid.", fields={"status": ["Unknown status."]})
            queryset = queryset.filter(status=wanted)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(DeliveryOutput(page, many=True).data)

    @extend_schema(
        summary="Redeliver failed deliveries", request=ReplayInput, responses={202: ReplayOutput, 409: CONFLICT},
        description="Every failed delivery of this endpoint since `since` gets a new attempt.",
    )  # fmt: skip
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        data = _validated(ReplayInput, request)
        endpoint = self.get_object()
        with operator_write(self, action="endpoint.replay_failed", target=endpoint, detail=data) as audit:
            count = audit.detail["replayed"] = services.deliveries_replay_failed(endpoint=endpoint, **data)
        return Response({"queued": count}, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["Webhooks"])
class SigningKeyListView(APIView):
    """The v1a public keys that sign deliveries now, as a JWK set: receivers verify webhook-signature's
    `v1a,` signatures with them (a previous key is listed until its grace period ends)."""

    permission_classes = WEBHOOK_PERMISSIONS
    operator_permissions = {"GET": "webhooks.view_endpoint"}

    # An APIView, not a viewset's list: the answer is one JWK set object, not a page of items.
    @extend_schema(
        summary="List the keys that sign deliveries", parameters=[SigningKeysQuery], responses=SigningKeySetOutput
    )
    def get(self, request):
        # A plain dict: an empty value (`?endpoint=`) is then refused rather than taken as absent.
        query = SigningKeysQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        keys = selectors.signing_public_keys(
            tenant=acting_tenant(request), endpoint_id=query.validated_data.get("endpoint")
        )
        return Response(SigningKeySetOutput({"keys": keys}).data)


@extend_schema(tags=["Webhooks"])
class EventTypeViewSet(viewsets.ViewSet):
    """The event catalogue (webhooks/catalogue.py): every type, its payload version and an example."""

    permission_classes = WEBHOOK_PERMISSIONS
    operator_permissions = {"list": "webhooks.view_event"}

    @extend_schema(summary="List event types", responses=EventTypeOutput(many=True))
    def list(self, request):
        return Response(EventTypeOutput(catalogue.EVENT_TYPES.values(), many=True).data)


@extend_schema(tags=["Webhook deliveries"])
@extend_schema_view(
    list=extend_schema(summary="List deliveries", description="Newest first."),
    retrieve=extend_schema(summary="Read a delivery", description="With every attempt."),
)
class DeliveryViewSet(viewsets.GenericViewSet):
    permission_classes = WEBHOOK_PERMISSIONS
    operator_permissions = {
        "list": "webhooks.view_delivery",
        "retrieve": "webhooks.view_delivery",
        "redeliver": "console.redeliver_webhook",
    }
    lookup_value_regex = UUID_PATTERN
    serializer_class = DeliveryOutput
    filter_backends = [DjangoFilterBackend]
    filterset_class = DeliveryFilter
    http_method_names = ["get", "post", "head", "options"]

    def get_queryset(self):
        return selectors.delivery_list(tenant=acting_tenant(self.request))

    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(DeliveryOutput(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(DeliveryOutput(self.get_object()).data)

    @extend_schema(
        summary="Redeliver now", request=None, responses={202: DeliveryOutput, 409: CONFLICT},
        description="One more attempt now, with the same `webhook-id`.",
    )  # fmt: skip
    @action(detail=True, methods=["post"])
    def redeliver(self, request, pk=None):
        delivery = self.get_object()
        with operator_write(self, action="delivery.redeliver", target=delivery):
            delivery = services.delivery_redeliver(delivery=delivery)
        return Response(DeliveryOutput(selectors.delivery_list().get(pk=delivery.pk)).data, status=202)
