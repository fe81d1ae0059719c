from rest_framework import serializers

from .models import Invalidation, InvalidationStatus, ProviderRequest


class ProviderRequestOutput(serializers.ModelSerializer):
    path_count = serializers.SerializerMethodField()

    class Meta:
        model = ProviderRequest
        fields = [
            "id", "target", "provider_id", "status", "error", "attempts", "path_count", "submitted_at", "completed_at",
        ]  # fmt: skip

    def get_path_count(self, request) -> int:
        return len(request.paths)


class InvalidationOutput(serializers.ModelSerializer):
    website = serializers.UUIDField(source="website_id", read_only=True)
    requests = ProviderRequestOutput(many=True, read_only=True, help_text="The provider requests carrying its paths.")

    class Meta:
        model = Invalidation
        fields = [
            "id", "website", "backend", "paths", "reason", "status", "error",
            "requested_at", "submitted_at", "completed_at", "requests",
        ]  # fmt: skip


class InvalidationListQuery(serializers.Serializer):
    status = serializers.ChoiceField(choices=InvalidationStatus.choices, required=False)


class InvalidationCreateInput(serializers.Serializer):
    paths = serializers.ListField(
        child=serializers.CharField(max_length=4000, trim_whitespace=False),
        required=False,
        default=list,
        max_length=20_000,
        help_text="Site-relative paths (/about/, /blog/*, /caf%C3%A9/ or /café/); empty or omitted purges the whole "
        "site. At most 20,000 paths of up to 4,000 characters, in a body within API_MAX_BODY_BYTES.",
    )


class WebsiteCdnInput(serializers.Serializer):
    cdn_backend = serializers.CharField(max_length=50, required=False)
    cdn_config = serializers.DictField(required=False, help_text='Provider ids, e.g. {"distribution_id": "E123"}.')
    cache_overrides = serializers.DictField(
        child=serializers.CharField(max_length=200), required=False,
        help_text='Cache-Control by content class (versioned, html, media, api, other).',
    )  # fmt: skip


class WebsiteCdnOutput(serializers.Serializer):
    cdn_backend = serializers.CharField()
    cdn_config = serializers.DictField()
    cache_overrides = serializers.DictField()
