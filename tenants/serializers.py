from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from core.inputs import Input, LimitOverride, MultilineText

from . import selectors
from .hostnames import MAX_HOSTNAMES_PER_WEBSITE, normalize_hostnames, preview_host
from .models import Deployment, Hostname, Tenant, Tier, Website
from .plans import tenant_usage_plan

# The examples of the published API description (/api/schema/, docs/quickstart.md uses the same shapes).
TENANT_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
WEBSITE_ID = "3f2a1c4e-8b7d-4e6f-9a0b-1c2d3e4f5a6b"
DEPLOYMENT_ID = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
PREVIOUS_DEPLOYMENT_ID = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
MAX_RATE_LIMIT = 10_000_000
MAX_MONTHLY_QUOTA = 10**15  # units a month; below 2**53, so every JSON client reads it exactly
MAX_DEPLOYMENT_NUMBER = 2_147_483_647  # PositiveIntegerField


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A tenant", response_only=True,
            value={
                "id": TENANT_ID, "name": "Acme", "slug": "acme", "tier": "starter", "requests_per_minute": 1000,
                "rate_limit_override": None, "status": "active", "suspended_at": None, "suspension_reason": "",
                "created_at": "2026-01-05T09:00:00Z", "updated_at": "2026-01-05T09:00:00Z",
            },
        )
    ]
)  # fmt: skip
class TenantOutput(serializers.ModelSerializer):
    requests_per_minute = serializers.SerializerMethodField(help_text="The limit over all the tenant's keys.")
    rate_limit_override = serializers.IntegerField(
        read_only=True, allow_null=True, min_value=1, max_value=MAX_RATE_LIMIT
    )
    monthly_quota_override = serializers.IntegerField(
        read_only=True, allow_null=True, min_value=1, max_value=MAX_MONTHLY_QUOTA
    )

    @extend_schema_field(serializers.IntegerField(min_value=1, max_value=MAX_RATE_LIMIT, allow_null=True))
    def get_requests_per_minute(self, tenant) -> int | None:
        # A list passes every tier's plan in its context (one query for the page, not one a row).
        plans = self.context.get("usage_plans")
        if plans is None:
            return tenant.requests_per_minute
        return tenant_usage_plan(tenant, tier_plan=plans.get(tenant.tier)).requests_per_minute

    class Meta:
        model = Tenant
        fields = [
            "id", "name", "slug", "tier", "requests_per_minute", "rate_limit_override", "burst_override",
            "monthly_quota_override", "status", "suspended_at", "suspension_reason", "created_at", "updated_at",
        ]  # fmt: skip


@extend_schema_serializer(
    examples=[OpenApiExample("A tenant", value={"name": "Acme", "slug": "acme", "tier": "starter"}, request_only=True)]
)
class TenantCreateInput(Input):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=63)
    tier = serializers.ChoiceField(choices=Tier.choices, default=Tier.FREE)


@extend_schema_serializer(
    examples=[
        OpenApiExample("Upgrade", value={"tier": "professional"}, request_only=True),
        OpenApiExample("Raise the limit", value={"rate_limit_override": 20000}, request_only=True),
    ]
)
class TenantUpdateInput(Input):
    name = serializers.CharField(max_length=200, required=False)
    tier = serializers.ChoiceField(choices=Tier.choices, required=False)
    rate_limit_override = LimitOverride(
        max_value=MAX_RATE_LIMIT,
        help_text="API requests a minute over all the tenant's keys instead of the tier's; null: the tier's.",
    )
    burst_override = LimitOverride(
        max_value=1_000_000,
        help_text="Units a second over all the tenant's keys instead of its plan's burst; null: the plan's.",
    )
    monthly_quota_override = LimitOverride(
        max_value=MAX_MONTHLY_QUOTA,
        help_text="Units a calendar month (UTC) instead of its plan's quota; null: the plan's.",
    )


@extend_schema_serializer(
    examples=[OpenApiExample("Suspend", value={"reason": "Invoice 2026-014 unpaid"}, request_only=True)]
)
class TenantSuspendInput(Input):
    reason = MultilineText(max_length=500)


class DeploymentSummary(serializers.ModelSerializer):
    number = serializers.IntegerField(min_value=1, max_value=MAX_DEPLOYMENT_NUMBER, read_only=True)

    class Meta:
        model = Deployment
        fields = ["id", "number", "status", "finished_at"]


class ChallengeRecordOutput(serializers.Serializer):
    type = serializers.ChoiceField(choices=["TXT"], help_text="Always TXT.")
    name = serializers.CharField(help_text="_platform-challenge.<hostname>")
    value = serializers.CharField(help_text="This hostname's token, exactly.")


HOSTNAME_EXAMPLE = {
    "hostname": "www.acme.example", "status": "pending",
    "record": {"type": "TXT", "name": "_platform-challenge.www.acme.example", "value": "pc-4f7d2a9b1c3e5f60"},
    "verified_at": None, "checked_at": "2026-01-05T09:00:05Z", "next_check_at": "2026-01-05T09:05:05Z", "error": "",
}  # fmt: skip


@extend_schema_serializer(examples=[OpenApiExample("A pending hostname", value=HOSTNAME_EXAMPLE, response_only=True)])
class HostnameOutput(serializers.ModelSerializer):
    """A custom hostname and its DNS verification: served once `status` is `verified`."""

    error = serializers.CharField(source="last_error", read_only=True, help_text="Why the last check failed.")
    record = serializers.SerializerMethodField(help_text="The DNS record that proves control of the hostname.")

    class Meta:
        model = Hostname
        fields = ["hostname", "status", "record", "verified_at", "checked_at", "next_check_at", "error"]

    def get_record(self, hostname) -> ChallengeRecordOutput:
        return {"type": "TXT", "name": hostname.challenge_name, "value": hostname.verification_token}


@extend_schema_field(OpenApiTypes.STR)
class WebsitePublicUrlField(serializers.Field):
    """A website's public URL, read-only: its first verified custom hostname, else its preview host."""

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "help_text", "The site's public URL: its first verified custom hostname, else its preview host."
        )
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, website) -> str:
        return selectors.website_public_url(website=website)


WEBSITE_EXAMPLE = {
    "id": WEBSITE_ID, "tenant": TENANT_ID, "name": "Acme shop", "status": "active",
    "url": f"https://{WEBSITE_ID}.sites.example.net/", "hostnames": ["www.acme.example"],
    "hostname_details": [HOSTNAME_EXAMPLE], "preview_host": f"{WEBSITE_ID}.sites.example.net",
    "active_deployment": {"id": DEPLOYMENT_ID, "number": 3, "status": "succeeded", "finished_at": "2026-01-05T09:02:11Z"},
    "cdn_backend": "default", "cdn_config": {}, "cache_overrides": {"html": "public, max-age=60"},
    "created_at": "2026-01-05T09:00:00Z", "updated_at": "2026-01-05T09:02:11Z",
}  # fmt: skip


@extend_schema_serializer(examples=[OpenApiExample("A website", value=WEBSITE_EXAMPLE, response_only=True)])
class WebsiteOutput(serializers.ModelSerializer):
    tenant = serializers.UUIDField(source="tenant_id", read_only=True)
    url = WebsitePublicUrlField(source="*")
    hostnames = serializers.SerializerMethodField(help_text="Custom hostnames, verified or not (see hostname_details).")
    hostname_details = HostnameOutput(source="hostnames", many=True, read_only=True)
    preview_host = serializers.SerializerMethodField(help_text="Always serves the website: <id>.<preview domain>.")
    active_deployment = DeploymentSummary(read_only=True, allow_null=True)
    cdn_config = serializers.DictField(read_only=True, help_text='Provider ids, e.g. {"distribution_id": "E123"}.')
    cache_overrides = serializers.DictField(
        child=serializers.CharField(), read_only=True,
        help_text="Cache-Control by content class (versioned, html, media, api, other); changed by operators.",
    )  # fmt: skip

    class Meta:
        model = Website
        fields = [
            "id", "tenant", "name", "status", "url", "hostnames", "hostname_details", "preview_host",
            "active_deployment", "cdn_backend", "cdn_config", "cache_overrides", "created_at", "updated_at",
        ]  # fmt: skip

    def get_hostnames(self, website) -> list[str]:
        return [hostname.hostname for hostname in website.hostnames.all()]

    def get_preview_host(self, website) -> str:
        return preview_host(website.pk)


_LABEL = "[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
# ASCII labels (an internationalised name in its xn-- form) and a top-level label that starts with a letter
# (no IP addresses); published as the field's pattern.
HOSTNAME_PATTERN = rf"^(?:{_LABEL}\.)+[a-zA-Z](?:[a-zA-Z0-9-]{{0,61}}[a-zA-Z0-9])?$"


class HostnamesField(serializers.ListField):
    """Custom hostnames, checked here (syntax, reserved names, duplicates) so that their errors come with the
    other fields' errors; whether another website holds one is the service's to say (409)."""

    def __init__(self, **kwargs):
        hostname = serializers.CharField(
            max_length=253,
            validators=[RegexValidator(HOSTNAME_PATTERN, "Not a hostname (expected e.g. www.example.com).")],
        )
        super().__init__(
            child=hostname, max_length=MAX_HOSTNAMES_PER_WEBSITE,
            help_text=f"At most {MAX_HOSTNAMES_PER_WEBSITE} distinct names, e.g. www.example.com (an "
            "internationalised name in its xn-- form); each is served once verified.",
            **kwargs,
        )  # fmt: skip

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        try:
            normalize_hostnames(values)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc
        return values


@extend_schema_serializer(
    examples=[
        OpenApiExample("A website", value={"name": "Acme shop", "hostnames": ["www.acme.example"]}, request_only=True)
    ]
)
class WebsiteCreateInput(Input):
    tenant = serializers.UUIDField(required=False, help_text="Operators only; an API key acts for its own tenant.")
    name = serializers.CharField(max_length=200)
    hostnames = HostnamesField(default=list)


@extend_schema_serializer(
    examples=[
        OpenApiExample("Rename", value={"name": "Acme store", "hostnames": ["www.acme.example"]}, request_only=True)
    ]
)
class WebsiteUpdateInput(Input):
    name = serializers.CharField(max_length=200, required=False)
    status = serializers.ChoiceField(choices=Website.Status.choices, required=False)
    hostnames = HostnamesField(required=False)


DEPLOYMENT_EXAMPLE = {
    "id": DEPLOYMENT_ID, "website": WEBSITE_ID, "site_url": f"https://{WEBSITE_ID}.sites.example.net/", "number": 3,
    "status": "succeeded", "trigger": "api", "description": "Release 2026-01-05", "error": "",
    "created_at": "2026-01-05T09:02:00Z", "started_at": "2026-01-05T09:02:01Z", "finished_at": "2026-01-05T09:02:11Z",
    "duration_seconds": 10.2, "bundle_size": 48213, "file_count": 12, "total_bytes": 181022,
    "storage_prefix": f"sites/{WEBSITE_ID}/3/", "source_deployment": None,
}  # fmt: skip


@extend_schema_serializer(examples=[OpenApiExample("A deployment", value=DEPLOYMENT_EXAMPLE, response_only=True)])
class DeploymentOutput(serializers.ModelSerializer):
    website = serializers.UUIDField(source="website_id", read_only=True)
    site_url = WebsitePublicUrlField(
        source="website", help_text="The website's public URL (it serves this deployment while it is the active one)."
    )
    number = serializers.IntegerField(min_value=1, max_value=MAX_DEPLOYMENT_NUMBER, read_only=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True, min_value=0)
    bundle_size = serializers.IntegerField(
        read_only=True, allow_null=True, min_value=0, max_value=settings.DEPLOY_BUNDLE_MAX_BYTES,
        help_text="Bytes of the uploaded archive.",
    )  # fmt: skip
    file_count = serializers.IntegerField(
        read_only=True, allow_null=True, min_value=0, max_value=settings.DEPLOY_BUNDLE_MAX_FILES
    )
    total_bytes = serializers.IntegerField(
        read_only=True, allow_null=True, min_value=0, max_value=settings.DEPLOY_BUNDLE_MAX_UNPACKED_BYTES,
        help_text="Bytes of the unpacked files.",
    )  # fmt: skip
    source_deployment = serializers.UUIDField(
        source="source_deployment_id", read_only=True, allow_null=True,
        help_text="For a rollback: the deployment whose files it serves again.",
    )  # fmt: skip

    class Meta:
        model = Deployment
        fields = [
            "id", "website", "site_url", "number", "status", "trigger", "description", "error",
            "created_at", "started_at", "finished_at", "duration_seconds",
            "bundle_size", "file_count", "total_bytes", "storage_prefix", "source_deployment",
        ]  # fmt: skip


class DeploymentCreateInput(Input):
    bundle = serializers.FileField(help_text="The site as a tar.gz or zip archive.", allow_empty_file=True)
    description = MultilineText(max_length=500, required=False, default="", allow_blank=True)


@extend_schema_serializer(
    examples=[
        OpenApiExample("The previous one", value={}, request_only=True),
        OpenApiExample("A given one", value={"deployment": PREVIOUS_DEPLOYMENT_ID}, request_only=True),
    ]
)
class DeploymentRollbackInput(Input):
    deployment = serializers.UUIDField(
        required=False, allow_null=True, help_text="Default: the last successful deployment before the active one."
    )
