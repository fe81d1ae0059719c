from django.conf import settings
from rest_framework import serializers

from . import selectors
from .models import Attempt, Delivery, Endpoint, SignatureScheme


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
            "failing_since", "signature_scheme", "public_key", "previous_public_key", "previous_secret_expires_at",
            "created_at", "updated_at",
        ]  # fmt: skip

    def get_public_key(self, endpoint) -> str | None:
        return endpoint.public_key or None

    def get_previous_public_key(self, endpoint) -> str | None:
        return selectors.endpoint_previous_public_key(endpoint)


class EndpointWithSecretOutput(EndpointOutput):
    secret = serializers.CharField(
        read_only=True, allow_null=True, help_text="v1: the whsec_ signing secret, shown this once; null for v1a."
    )

    class Meta(EndpointOutput.Meta):
        fields = [*EndpointOutput.Meta.fields, "secret"]


class EndpointCreateInput(serializers.Serializer):
    tenant = serializers.UUIDField(required=False, help_text="Operators only: the tenant the endpoint belongs to.")
    url = serializers.CharField(max_length=settings.WEBHOOKS_MAX_URL_LENGTH)
    event_types = serializers.ListField(child=serializers.CharField(max_length=100), max_length=100)
    description = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    signature_scheme = serializers.ChoiceField(
        choices=SignatureScheme.choices, required=False, default=SignatureScheme.V1,
        help_text="v1: HMAC-SHA256 with a shared whsec_ secret; v1a: ed25519, verified with the published whpk_ key.",
    )  # fmt: skip


class EndpointUpdateInput(serializers.Serializer):
    url = serializers.CharField(max_length=settings.WEBHOOKS_MAX_URL_LENGTH, required=False)
    event_types = serializers.ListField(child=serializers.CharField(max_length=100), max_length=100, required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)


class RotateSecretInput(serializers.Serializer):
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


class SigningKeySetOutput(serializers.Serializer):
    keys = SigningKeyOutput(many=True)


class ReplayInput(serializers.Serializer):
    since = serializers.DateTimeField()


class PingOutput(serializers.Serializer):
    event_id = serializers.UUIDField(help_text="The webhook.ping event queued for this endpoint.")


class ReplayOutput(serializers.Serializer):
    queued = serializers.IntegerField()


class AttemptOutput(serializers.ModelSerializer):
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
        ]


class DeliveryOutput(serializers.ModelSerializer):
    webhook_id = serializers.CharField(source="msg_id", read_only=True)
    endpoint = serializers.UUIDField(source="endpoint_id", read_only=True)
    event_id = serializers.UUIDField(read_only=True)
    event_type = serializers.CharField(source="event.type", read_only=True)
    attempts = AttemptOutput(many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id", "webhook_id", "endpoint", "event_id", "event_type", "status", "attempt_count", "next_attempt_at",
            "last_attempt_at", "created_at", "finished_at", "attempts",
        ]  # fmt: skip


class EventTypeOutput(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField()
    description = serializers.CharField()
    example = serializers.JSONField(help_text="The shape of `data` in the delivered body.")
