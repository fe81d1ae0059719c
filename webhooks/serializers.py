from django.conf import settings
from rest_framework import serializers

from .models import Attempt, Delivery, Endpoint


class EndpointOutput(serializers.ModelSerializer):
    """Never includes the secret: it is returned once, by create and rotate-secret."""

    tenant = serializers.UUIDField(source="tenant_id", read_only=True)

    class Meta:
        model = Endpoint
        fields = [
            "id", "tenant", "url", "description", "event_types", "is_active", "disabled_reason", "disabled_at",
            "failing_since", "consecutive_failures", "lane", "breaker_state", "breaker_opened_at", "breaker_probe_at",
            "previous_secret_expires_at", "created_at", "updated_at",
        ]  # fmt: skip


class EndpointWithSecretOutput(EndpointOutput):
    secret = serializers.CharField(read_only=True)

    class Meta(EndpointOutput.Meta):
        fields = [*EndpointOutput.Meta.fields, "secret"]


class EndpointCreateInput(serializers.Serializer):
    tenant = serializers.UUIDField(required=False, help_text="Operators only: the tenant the endpoint belongs to.")
    url = serializers.CharField(max_length=settings.WEBHOOKS_MAX_URL_LENGTH)
    event_types = serializers.ListField(child=serializers.CharField(max_length=100), max_length=100)
    description = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


class EndpointUpdateInput(serializers.Serializer):
    url = serializers.CharField(max_length=settings.WEBHOOKS_MAX_URL_LENGTH, required=False)
    event_types = serializers.ListField(child=serializers.CharField(max_length=100), max_length=100, required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)


class RotateSecretInput(serializers.Serializer):
    grace_seconds = serializers.IntegerField(min_value=0, max_value=7 * 24 * 3600, required=False)


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
            "state",
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
