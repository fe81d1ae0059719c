from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from core.inputs import Input, LimitOverride, MultilineText, QueryInteger

from .models import ApiKey
from .scopes import SCOPES

KEY_ID = "5b1e2c3d-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
TENANT_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
MAX_RATE_LIMIT = 10**7
KEY_EXAMPLE = {
    "id": KEY_ID, "tenant": TENANT_ID, "name": "ci deploys", "prefix": "plk_live_", "last_four": "x9Qa",
    "scopes": ["websites:read", "deployments:write"], "rate_limit_per_minute": None,
    "created_at": "2026-01-05T09:00:00Z", "expires_at": None, "revoked_at": None, "revoked_reason": "",
    "last_used_at": "2026-01-05T09:12:40Z", "rotated_to": None, "is_active": True,
}  # fmt: skip


@extend_schema_serializer(examples=[OpenApiExample("A key", value=KEY_EXAMPLE, response_only=True)])
class ApiKeyOutput(serializers.ModelSerializer):
    prefix = serializers.CharField(read_only=True)
    last_four = serializers.CharField(read_only=True)
    is_active = serializers.BooleanField(read_only=True)
    rate_limit_per_minute = serializers.IntegerField(
        read_only=True, allow_null=True, min_value=1, max_value=MAX_RATE_LIMIT,
        help_text="The key's own limit, below its tenant's; null: the tenant's.",
    )  # fmt: skip

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "tenant",
            "name",
            "prefix",
            "last_four",
            "scopes",
            "rate_limit_per_minute",
            "created_at",
            "expires_at",
            "revoked_at",
            "revoked_reason",
            "last_used_at",
            "rotated_to",
            "is_active",
        ]


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A new key", response_only=True,
            value={**KEY_EXAMPLE, "last_used_at": None, "key": "plk_live_4fQ2mZ7tXcL1Hq8vB3nK6wR0yT5uE2iO9pA4sD7fG1jx9Qa"},
        )
    ]
)  # fmt: skip
class ApiKeyCreatedOutput(ApiKeyOutput):
    key = serializers.SerializerMethodField(help_text="The full key. Shown in this response only.")

    class Meta(ApiKeyOutput.Meta):
        fields = [*ApiKeyOutput.Meta.fields, "key"]

    def get_key(self, obj) -> str:
        return self.context["raw_key"]


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A deploy key", request_only=True,
            value={"name": "ci deploys", "scopes": ["websites:read", "deployments:write"], "expires_at": None},
        )
    ]
)  # fmt: skip
class ApiKeyCreateInput(Input):
    tenant = serializers.UUIDField(required=False, help_text="Operators only; a key creates for its tenant.")
    name = serializers.CharField(max_length=200)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=list(SCOPES)), allow_empty=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    rate_limit_per_minute = LimitOverride(
        max_value=MAX_RATE_LIMIT, help_text="At most the tenant's limit (400 naming it otherwise)."
    )


@extend_schema_serializer(
    examples=[OpenApiExample("Leaked", value={"reason": "Printed in a CI log"}, request_only=True)]
)
class ApiKeyRevokeInput(Input):
    reason = MultilineText(max_length=500, required=False, allow_blank=True, default="")


@extend_schema_serializer(examples=[OpenApiExample("One hour", value={"grace_seconds": 3600}, request_only=True)])
class ApiKeyRotateInput(Input):
    grace_seconds = serializers.IntegerField(
        min_value=0, max_value=settings.API_KEY_ROTATION_MAX_GRACE_SECONDS, default=86_400,
        help_text="How long the rotated key keeps working; at most API_KEY_ROTATION_MAX_GRACE_SECONDS (7 days).",
    )  # fmt: skip


class UsageQueryInput(serializers.Serializer):
    minutes = QueryInteger(min_value=1, max_value=7 * 1440, default=60)
    tenant = serializers.UUIDField(required=False, help_text="Operators only.")


class UsageCountsOutput(serializers.Serializer):
    requests = serializers.IntegerField(min_value=0)
    client_errors = serializers.IntegerField(min_value=0, help_text="4xx answers.")
    server_errors = serializers.IntegerField(min_value=0, help_text="5xx answers.")
    rate_limited = serializers.IntegerField(min_value=0, help_text="429 answers.")
    latency_ms_sum = serializers.IntegerField(min_value=0)


class UsageMinuteOutput(UsageCountsOutput):
    minute = serializers.DateTimeField()
    latency_ms_max = serializers.IntegerField(min_value=0, allow_null=True)


class UsageTotalsOutput(UsageCountsOutput):
    latency_ms_max = serializers.IntegerField(min_value=0)


class UsageKeyOutput(UsageCountsOutput):
    api_key = serializers.UUIDField()
    name = serializers.CharField()


_COUNTS = {"requests": 42, "client_errors": 1, "server_errors": 0, "rate_limited": 0, "latency_ms_sum": 630}


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "An hour of usage", response_only=True,
            value={
                "tenant": TENANT_ID, "from": "2026-01-05T08:15:00Z", "to": "2026-01-05T09:15:00Z",
                "totals": {**_COUNTS, "latency_ms_max": 48},
                "series": [{"minute": "2026-01-05T09:12:00Z", **_COUNTS, "latency_ms_max": 48}],
                "keys": [{"api_key": KEY_ID, "name": "ci deploys", **_COUNTS}],
            },
        )
    ]
)  # fmt: skip
class UsageOutput(serializers.Serializer):
    tenant = serializers.UUIDField()
    totals = UsageTotalsOutput()
    series = UsageMinuteOutput(many=True, help_text="One row per minute that saw requests, oldest first.")
    keys = UsageKeyOutput(many=True, help_text="Per key, busiest first.")

    def get_fields(self):
        # `from` and `to` are Python keywords: declared here rather than as attributes.
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField()
        fields["to"] = serializers.DateTimeField()
        return fields
