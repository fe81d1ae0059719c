from rest_framework import serializers

from .models import Invalidation


class InvalidationOutput(serializers.ModelSerializer):
    website = serializers.UUIDField(source="website_id", read_only=True)

    class Meta:
        model = Invalidation
        fields = [
            "id", "website", "backend", "target", "provider_id", "paths", "reason", "status", "error",
            "attempts", "requested_at", "submitted_at", "completed_at",
        ]  # fmt: skip


class InvalidationCreateInput(serializers.Serializer):
    paths = serializers.ListField(
        child=serializers.CharField(max_length=4000, trim_whitespace=False),
        required=False,
        default=list,
        max_length=20_000,
        help_text="Site-relative paths (/about/, /blog/*); empty or omitted purges the whole site.",
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
