from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from core.inputs import Input

from .models import Invalidation, InvalidationStatus, ProviderRequest


class ProviderRequestOutput(serializers.ModelSerializer):
    attempts = serializers.IntegerField(min_value=0, read_only=True)
    path_count = serializers.SerializerMethodField()

    class Meta:
        model = ProviderRequest
        fields = [
            "id", "target", "provider_id", "status", "error", "attempts", "path_count", "submitted_at", "completed_at",
        ]  # fmt: skip

    def get_path_count(self, request) -> int:
        return len(request.paths)


WEBSITE_ID = "3f2a1c4e-8b7d-4e6f-9a0b-1c2d3e4f5a6b"

# What cdn.paths.canonical_path accepts, as a pattern for the published schema (the service checks it and
# says what is wrong): "/" then segments, none of them "." or "..", no control character, and "*" only
# as a final "/*"; the first segment is not empty ("//x" is another host to a browser).
_CHAR = r"[^/\x00-\x1f\x7f*]"
_NOT_DOT = r"[^/\x00-\x1f\x7f*.]"
_SEGMENT = rf"(?:{_NOT_DOT}{_CHAR}*|\.{_NOT_DOT}{_CHAR}*|\.\.{_CHAR}+)"
SITE_PATH_PATTERN = rf"^/(?:\*|{_SEGMENT}(?:/{_SEGMENT}?)*(?:/\*)?)?$"


@extend_schema_field({"type": "string", "maxLength": 4000, "pattern": SITE_PATH_PATTERN})
class SitePathField(serializers.CharField):
    """A site-relative path; cdn.paths checks it in the service, with a message naming what is wrong."""


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A completed invalidation", response_only=True, status_codes=["200", "202"],
            value={
                "id": "6e5d4c3b-2a19-4f8e-9d7c-6b5a4f3e2d1c", "website": WEBSITE_ID, "backend": "default",
                "paths": ["/about/", "/blog/*"], "reason": "api by ci deploys", "status": "completed", "error": "",
                "requested_at": "2026-01-05T09:03:00Z", "submitted_at": "2026-01-05T09:03:01Z",
                "completed_at": "2026-01-05T09:03:04Z",
                "requests": [{
                    "id": "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0", "target": "default", "provider_id": "I2J0PQ8ZC3XK1",
                    "status": "completed", "error": "", "attempts": 1, "path_count": 2,
                    "submitted_at": "2026-01-05T09:03:01Z", "completed_at": "2026-01-05T09:03:04Z",
                }],
            },
        )
    ]
)  # fmt: skip
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


@extend_schema_serializer(
    examples=[
        OpenApiExample("Some pages", value={"paths": ["/about/", "/blog/*"]}, request_only=True),
        OpenApiExample("The whole site", value={}, request_only=True),
    ]
)
class InvalidationCreateInput(Input):
    paths = serializers.ListField(
        child=SitePathField(max_length=4000, trim_whitespace=False),
        required=False,
        default=list,
        max_length=20_000,
        help_text="Site-relative paths (/about/, /blog/*, /caf%C3%A9/ or /café/); empty or omitted purges the whole "
        "site. At most 20,000 paths of up to 4,000 characters, in a body within API_MAX_BODY_BYTES.",
    )


# A website's CDN settings as sent and as answered: one example, so the two cannot drift apart.
CDN_SETTINGS_EXAMPLE = {
    "cdn_backend": "cloudfront", "cdn_config": {"distribution_id": "E2QWRUHAPOMQZL"},
    "cache_overrides": {"html": "public, max-age=60"},
}  # fmt: skip


@extend_schema_serializer(examples=[OpenApiExample("CloudFront", value=CDN_SETTINGS_EXAMPLE, request_only=True)])
class WebsiteCdnInput(Input):
    cdn_backend = serializers.CharField(max_length=50, required=False)
    cdn_config = serializers.DictField(required=False, help_text='Provider ids, e.g. {"distribution_id": "E123"}.')
    cache_overrides = serializers.DictField(
        child=serializers.CharField(max_length=200), required=False,
        help_text='Cache-Control by content class (versioned, html, media, api, other).',
    )  # fmt: skip


@extend_schema_serializer(examples=[OpenApiExample("CloudFront", value=CDN_SETTINGS_EXAMPLE, response_only=True)])
class WebsiteCdnOutput(serializers.Serializer):
    cdn_backend = serializers.CharField(help_text="An alias of CDN_BACKENDS.")
    cdn_config = serializers.DictField(help_text='Provider ids, e.g. {"distribution_id": "E123"}.')
    cache_overrides = serializers.DictField(child=serializers.CharField())
