from rest_framework import serializers

from .hostnames import preview_host
from .models import Deployment, Hostname, Tenant, Tier, Website


class TenantOutput(serializers.ModelSerializer):
    requests_per_minute = serializers.IntegerField(read_only=True)

    class Meta:
        model = Tenant
        fields = [
            "id", "name", "slug", "tier", "requests_per_minute", "rate_limit_override", "burst_override",
            "monthly_quota_override", "status", "suspended_at", "suspension_reason", "created_at", "updated_at",
        ]  # fmt: skip


class TenantCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=63)
    tier = serializers.ChoiceField(choices=Tier.choices, default=Tier.FREE)


class TenantUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    tier = serializers.ChoiceField(choices=Tier.choices, required=False)
    rate_limit_override = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=10_000_000,
        help_text="API requests a minute over all the tenant's keys instead of the tier's; null: the tier's.",
    )  # fmt: skip
    burst_override = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=1_000_000,
        help_text="Units a second over all the tenant's keys instead of its plan's burst; null: the plan's.",
    )  # fmt: skip
    monthly_quota_override = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=10**15,
        help_text="Units a calendar month (UTC) instead of its plan's quota; null: the plan's.",
    )  # fmt: skip


class TenantSuspendInput(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class DeploymentSummary(serializers.ModelSerializer):
    class Meta:
        model = Deployment
        fields = ["id", "number", "status", "finished_at"]


class ChallengeRecordOutput(serializers.Serializer):
    type = serializers.ChoiceField(choices=["TXT"], help_text="Always TXT.")
    name = serializers.CharField(help_text="_platform-challenge.<hostname>")
    value = serializers.CharField(help_text="This hostname's token, exactly.")


class HostnameOutput(serializers.ModelSerializer):
    """A custom hostname and its DNS verification: served once `status` is `verified`."""

    error = serializers.CharField(source="last_error", read_only=True, help_text="Why the last check failed.")
    record = serializers.SerializerMethodField(help_text="The DNS record that proves control of the hostname.")

    class Meta:
        model = Hostname
        fields = ["hostname", "status", "record", "verified_at", "checked_at", "next_check_at", "error"]

    def get_record(self, hostname) -> ChallengeRecordOutput:
        return {"type": "TXT", "name": hostname.challenge_name, "value": hostname.verification_token}


class WebsiteOutput(serializers.ModelSerializer):
    tenant = serializers.UUIDField(source="tenant_id", read_only=True)
    hostnames = serializers.SerializerMethodField(help_text="Custom hostnames, verified or not (see hostname_details).")
    hostname_details = HostnameOutput(source="hostnames", many=True, read_only=True)
    preview_host = serializers.SerializerMethodField(help_text="Always serves the website: <id>.<preview domain>.")
    active_deployment = DeploymentSummary(read_only=True, allow_null=True)

    class Meta:
        model = Website
        fields = [
            "id", "tenant", "name", "status", "hostnames", "hostname_details", "preview_host", "active_deployment",
            "cdn_backend", "cdn_config", "cache_overrides", "created_at", "updated_at",
        ]  # fmt: skip

    def get_hostnames(self, website) -> list[str]:
        return [hostname.hostname for hostname in website.hostnames.all()]

    def get_preview_host(self, website) -> str:
        return preview_host(website.pk)


class WebsiteCreateInput(serializers.Serializer):
    tenant = serializers.UUIDField(required=False, help_text="Operators only; an API key acts for its own tenant.")
    name = serializers.CharField(max_length=200)
    hostnames = serializers.ListField(child=serializers.CharField(max_length=253), default=list)


class WebsiteUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    status = serializers.ChoiceField(choices=Website.Status.choices, required=False)
    hostnames = serializers.ListField(child=serializers.CharField(max_length=253), required=False)


class DeploymentOutput(serializers.ModelSerializer):
    website = serializers.UUIDField(source="website_id", read_only=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    source_deployment = serializers.UUIDField(source="source_deployment_id", read_only=True, allow_null=True)

    class Meta:
        model = Deployment
        fields = [
            "id", "website", "number", "status", "trigger", "description", "error",
            "created_at", "started_at", "finished_at", "duration_seconds",
            "bundle_size", "file_count", "total_bytes", "storage_prefix", "source_deployment",
        ]  # fmt: skip


class DeploymentCreateInput(serializers.Serializer):
    bundle = serializers.FileField(help_text="The site as a tar.gz or zip archive.", allow_empty_file=True)
    description = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class DeploymentRollbackInput(serializers.Serializer):
    deployment = serializers.UUIDField(
        required=False, allow_null=True, help_text="Default: the last successful deployment before the active one."
    )
