from rest_framework import serializers

from .models import ApiKey
from .scopes import SCOPES


class ApiKeyOutput(serializers.ModelSerializer):
    prefix = serializers.CharField(read_only=True)
    last_four = serializers.CharField(read_only=True)
    is_active = serializers.BooleanField(read_only=True)

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


class ApiKeyCreatedOutput(ApiKeyOutput):
    key = serializers.SerializerMethodField(help_text="The full key. Shown in this response only.")

    class Meta(ApiKeyOutput.Meta):
        fields = [*ApiKeyOutput.Meta.fields, "key"]

    def get_key(self, obj) -> str:
        return self.context["raw_key"]


class ApiKeyCreateInput(serializers.Serializer):
    tenant = serializers.UUIDField(required=False, help_text="Operators only; a key creates for its tenant.")
    name = serializers.CharField(max_length=200)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=list(SCOPES)), allow_empty=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    rate_limit_per_minute = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=10**7)


class ApiKeyRevokeInput(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class ApiKeyRotateInput(serializers.Serializer):
    grace_seconds = serializers.IntegerField(
        min_value=0, default=86_400,
        help_text="How long the rotated key keeps working; at most API_KEY_ROTATION_MAX_GRACE_SECONDS (7 days).",
    )  # fmt: skip


class UsageQueryInput(serializers.Serializer):
    minutes = serializers.IntegerField(min_value=1, max_value=7 * 1440, default=60)
    tenant = serializers.UUIDField(required=False, help_text="Operators only.")
