from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from core.inputs import Input

from . import selectors
from .models import Attempt, Delivery, Endpoint, SignatureScheme

ENDPOINT_ID = "2c4e6a8b-0d1f-4a3b-9c5d-7e9f1a3b5c7d"
TENANT_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
ENDPOINT_EXAMPLE = {
    "id": ENDPOINT_ID, "tenant": TENANT_ID, "url": "https://hooks.acme.example/platform",
    "description": "deploy notifications", "event_types": ["deployment.*", "cdn.*"], "is_active": True,
    "disabled_reason": "", "disabled_at": None, "failing_since": None, "signature_scheme": "v1",
    "public_key": None, "previous_public_key": None, "previous_secret_expires_at": None,
    "created_at": "2026-01-05T09:00:00Z", "updated_at": "2026-01-05T09:00:00Z",
}  # fmt: skip
SECRET_EXAMPLE = "whsec_c2VjcmV0LWV4YW1wbGU="  # noqa: S105 - a made-up example for the docs


@extend_schema_serializer(examples=[OpenApiExample("An endpoint", value=ENDPOINT_EXAMPLE, response_only=True)])
class EndpointOutput(serializers.ModelSerializer):
    """Never includes a v1 secret (it is returned once, by create and rotate-secret) nor a v1a private key
    (never returned); v1a public keys are published here and in GET /webhooks/keys/."""

    tenant = serializers.UUIDField(source="tenant_id", read_only=True)
    public_key = serializers.SerializerMethodField(help_text="v1a: the whpk_ key that verifies its signatures.")
    previous_public_key = serializers.SerializerMethodField(
        help_text="v1a: the previous whpk_ key, while it still signs (until previous_secret_expires_at)."
    )

    class Meta:
        model = Endpoint
        fields = [
            "id", "tenant", "url", "description", "event_types", "is_active", "disabled_reason", "disabled_at",
            "failing_since", "consecutive_failures", "lane", "breaker_state", "breaker_opened_at", "breaker_probe_at",
            "signature_scheme", "public_key", "previous_public_key", "previous_secret_expires_at",
            "created_at", "updated_at",
        ]  # fmt: skip

    def get_public_key(self, endpoint) -> str | None:
        return endpoint.public_key or None

    def get_previous_public_key(self, endpoint) -> str | None:
        return selectors.endpoint_previous_public_key(endpoint)


@extend_schema_serializer(
    examples=[
        OpenApiExample("With its secret", value={**ENDPOINT_EXAMPLE, "secret": SECRET_EXAMPLE}, response_only=True)
    ]
)
class EndpointWithSecretOutput(EndpointOutput):
    secret = serializers.CharField(
        read_only=True, allow_null=True, help_text="v1: the whsec_ signing secret, shown this once; null for v1a."
    )

    class Meta(EndpointOutput.Meta):
        fields = [*EndpointOutput.Meta.fields, "secret"]


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Deployments and CDN", request_only=True,
            value={"url": "https://hooks.acme.example/platform", "event_types": ["deployment.*", "cdn.*"],
                   "description": "deploy notifications"},
        )
    ]
)  # fmt: skip
class EndpointCreateInput(Input):
    tenant = serializers.UUIDField(required=False, help_text="Operators only: the tenant the endpoint belongs to.")
    url = serializers.CharField(max_length=settings.WEBHOOKS_MAX_URL_LENGTH)
    event_types = serializers.ListField(child=serializers.CharField(max_length=100), max_length=100)
    description = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    signature_scheme = serializers.ChoiceField(
        choices=SignatureScheme.choices, required=False, default=SignatureScheme.V1,
        help_text="v1: HMAC-SHA256 with a shared whsec_ secret; v1a: ed25519, verified with the published whpk_ key.",
    )  # fmt: skip


@extend_schema_serializer(
    examples=[
        OpenApiExample("Pause", value={"is_active": False}, request_only=True),
        OpenApiExample("Everything", value={"event_types": ["*"]}, request_only=True),
    ]
)
class EndpointUpdateInput(Input):
    url = serializers.CharField(max_length=settings.WEBHOOKS_MAX_URL_LENGTH, required=False)
    event_types = serializers.ListField(child=serializers.CharField(max_length=100), max_length=100, required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)


@extend_schema_serializer(examples=[OpenApiExample("One hour", value={"grace_seconds": 3600}, request_only=True)])
class RotateSecretInput(Input):
    grace_seconds = serializers.IntegerField(min_value=0, max_value=7 * 24 * 3600, required=False)
    signature_scheme = serializers.ChoiceField(
        choices=SignatureScheme.choices, required=False, help_text="The new key's scheme; the endpoint's by default."
    )


class SigningKeysQuery(serializers.Serializer):
    endpoint = serializers.UUIDField(required=False, help_text="Only this endpoint's keys.")


class SigningKeyOutput(serializers.Serializer):
    kty = serializers.CharField()
    crv = serializers.CharField()
    x = serializers.CharField(help_text="The raw public key, base64url without padding (RFC 8037).")
    kid = serializers.CharField(help_text="The RFC 7638 thumbprint of the key.")
    use = serializers.CharField()
    alg = serializers.CharField()
    endpoint = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["current", "previous"])
    public_key = serializers.CharField(help_text="The same key in Standard Webhooks' whpk_ form.")
    expires_at = serializers.DateTimeField(allow_null=True, help_text="When a previous key stops signing.")


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "One current key", response_only=True,
            value={"keys": [{
                "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k", "use": "sig", "alg": "EdDSA",
                "endpoint": ENDPOINT_ID, "status": "current",
                "public_key": "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", "expires_at": None,
            }]},
        )
    ]
)  # fmt: skip
class SigningKeySetOutput(serializers.Serializer):
    keys = SigningKeyOutput(many=True)


@extend_schema_serializer(
    examples=[OpenApiExample("Since an outage", value={"since": "2026-01-05T06:00:00Z"}, request_only=True)]
)
class ReplayInput(Input):
    since = serializers.DateTimeField()


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Queued",
            value={"event_id": "8f7e6d5c-4b3a-4291-8e7d-6c5b4a392817"},
            response_only=True,
            status_codes=["202"],
        )
    ]
)
class PingOutput(serializers.Serializer):
    event_id = serializers.UUIDField(help_text="The webhook.ping event queued for this endpoint.")


@extend_schema_serializer(
    examples=[OpenApiExample("Queued", value={"queued": 3}, response_only=True, status_codes=["202"])]
)
class ReplayOutput(serializers.Serializer):
    queued = serializers.IntegerField(min_value=0, help_text="Deliveries given a new attempt.")


class AttemptOutput(serializers.ModelSerializer):
    number = serializers.IntegerField(min_value=1, read_only=True)
    duration_ms = serializers.IntegerField(min_value=0, allow_null=True, read_only=True)
    status_code = serializers.IntegerField(
        min_value=100, max_value=599, allow_null=True, read_only=True, help_text="None: no HTTP answer."
    )

    class Meta:
        model = Attempt
        fields = [
            "number",
            "started_at",
            "duration_ms",
            "status_code",
            "succeeded",
            "error",
            "response_excerpt",
            "manual",
            "state",
        ]


DELIVERY_ID = "4a6c8e0f-2b4d-4f6a-8c0e-2a4c6e8f0b2d"


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A delivered event", response_only=True, status_codes=["200", "202"],
            value={
                "id": DELIVERY_ID, "webhook_id": f"msg_{DELIVERY_ID}", "endpoint": ENDPOINT_ID,
                "event_id": "8f7e6d5c-4b3a-4291-8e7d-6c5b4a392817", "event_type": "deployment.succeeded",
                "status": "succeeded", "attempt_count": 1, "next_attempt_at": None,
                "last_attempt_at": "2026-01-05T09:02:12Z", "created_at": "2026-01-05T09:02:11Z",
                "finished_at": "2026-01-05T09:02:12Z",
                "attempts": [{
                    "number": 1, "started_at": "2026-01-05T09:02:12Z", "duration_ms": 84, "status_code": 200,
                    "succeeded": True, "error": "", "response_excerpt": "ok", "manual": False,
                }],
            },
        )
    ]
)  # fmt: skip
class DeliveryOutput(serializers.ModelSerializer):
    webhook_id = serializers.CharField(source="msg_id", read_only=True)
    endpoint = serializers.UUIDField(source="endpoint_id", read_only=True)
    event_id = serializers.UUIDField(read_only=True)
    event_type = serializers.CharField(source="event.type", read_only=True)
    attempts = AttemptOutput(many=True, read_only=True)
    attempt_count = serializers.IntegerField(min_value=0, read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id", "webhook_id", "endpoint", "event_id", "event_type", "status", "attempt_count", "next_attempt_at",
            "last_attempt_at", "created_at", "finished_at", "attempts",
        ]  # fmt: skip


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "deployment.succeeded", response_only=True,
            value={
                "name": "deployment.succeeded", "version": 1, "description": "A deployment succeeded and is now served.",
                "example": {"deployment": {
                    "id": "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a", "website_id": "3f2a1c4e-8b7d-4e6f-9a0b-1c2d3e4f5a6b",
                    "number": 3, "status": "succeeded", "trigger": "api", "started_at": "2026-01-05T09:02:01Z",
                    "finished_at": "2026-01-05T09:02:11Z", "error": "",
                }},
            },
        )
    ]
)  # fmt: skip
class EventTypeOutput(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField()
    description = serializers.CharField()
    example = serializers.DictField(help_text="An example of `data` in the delivered body.")
