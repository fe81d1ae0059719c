import secrets
import uuid

from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from core.leases import LeasedJob


class Tier(models.TextChoices):
    FREE = "free"
    STARTER = "starter"
    PROFESSIONAL = "professional"
    ENTERPRISE = "enterprise"


# The usage plans a fresh database starts with (operators edit them in the admin): burst (units a
# second), units a minute and a monthly quota (calendar month, UTC); None is no limit of that kind.
# Burst is off by default: the minute window already bounds a client, and a burst limit below a
# tier's minute limit is a product decision per plan. Quotas are about 70 % of what the minute limit
# allows in a month for the paid tiers below Enterprise; Enterprise has none.
DEFAULT_USAGE_PLANS = {
    Tier.FREE: {"burst_per_second": None, "requests_per_minute": 100, "monthly_quota": 100_000},
    Tier.STARTER: {"burst_per_second": None, "requests_per_minute": 1_000, "monthly_quota": 5_000_000},
    Tier.PROFESSIONAL: {"burst_per_second": None, "requests_per_minute": 5_000, "monthly_quota": 50_000_000},
    Tier.ENTERPRISE: {"burst_per_second": None, "requests_per_minute": 50_000, "monthly_quota": None},
}


def _in_choices(field: str, choices: type[models.TextChoices]) -> models.Q:
    return models.Q(**{f"{field}__in": choices.values})


class TenantStatus(models.TextChoices):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class WebsiteStatus(models.TextChoices):
    ACTIVE = "active"
    DISABLED = "disabled"


class HostnameStatus(models.TextChoices):
    PENDING = "pending", "Pending verification"
    VERIFIED = "verified"
    FAILED = "failed", "Verification failed"


class DeploymentStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class DeploymentTrigger(models.TextChoices):
    API = "api", "API"
    ADMIN = "admin"
    COMMAND = "command"
    ROLLBACK = "rollback"


class Tenant(models.Model):
    Status = TenantStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=63, unique=True)
    tier = models.CharField(max_length=20, choices=Tier.choices, default=Tier.FREE)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspension_reason = models.CharField(max_length=500, blank=True)
    # API requests a minute over all the tenant's keys instead of the tier's: set only by an operator,
    # through tenant_limit_override (audited).
    rate_limit_override = models.PositiveIntegerField(null=True, blank=True)
    # The same for the plan's burst and monthly quota (tenants.plans.tenant_plan_override, audited).
    burst_override = models.PositiveIntegerField(null=True, blank=True)
    monthly_quota_override = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=_in_choices("tier", Tier), name="tenant_tier_valid"),
            models.CheckConstraint(
                condition=models.Q(rate_limit_override__isnull=True) | models.Q(rate_limit_override__gte=1),
                name="tenant_rate_limit_override_positive",
            ),
            models.CheckConstraint(condition=_in_choices("status", TenantStatus), name="tenant_status_valid"),
            models.CheckConstraint(condition=~models.Q(slug=""), name="tenant_slug_not_empty"),
            models.CheckConstraint(
                condition=models.Q(status="active") | models.Q(suspended_at__isnull=False),
                name="tenant_suspended_has_time",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    @property
    def requests_per_minute(self) -> int | None:
        """The tenant's API limit a minute over all its keys: the operator's override, else its plan's."""
        from .plans import tenant_usage_plan

        return tenant_usage_plan(self).requests_per_minute


class UsagePlan(models.Model):
    """A tier's API usage plan: every limit optional (empty: none of that kind); units are requests
    weighted by each operation's cost. Changed only through tenants.plans.usage_plan_update (audited)."""

    tier = models.CharField(max_length=20, choices=Tier.choices, unique=True)
    burst_per_second = models.PositiveIntegerField(null=True, blank=True, help_text="Units a second.")
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True, help_text="Units a minute.")
    monthly_quota = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Units a calendar month (UTC), over all the tenant's keys."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tier"]
        constraints = [models.CheckConstraint(condition=_in_choices("tier", Tier), name="usage_plan_tier_valid")]
        constraints += [
            models.CheckConstraint(
                condition=models.Q(**{f"{field}__isnull": True}) | models.Q(**{f"{field}__gte": 1}),
                name=f"usage_plan_{field}_positive",
            )
            for field in ("burst_per_second", "requests_per_minute", "monthly_quota")
        ]

    def __str__(self) -> str:
        return f"{self.get_tier_display()} plan"


class Website(models.Model):
    Status = WebsiteStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="websites")
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    # The deployment being served; switched atomically on activation and rollback.
    active_deployment = models.ForeignKey(
        "Deployment", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # CDN: the CDN_BACKENDS alias in front of this website and its provider ids there
    # (e.g. {"distribution_id": "E2..."} for CloudFront, {"zone_id": "..."} for Cloudflare).
    cdn_backend = models.CharField(max_length=50, default="default")
    cdn_config = models.JSONField(default=dict, blank=True)
    # Per-website overrides of the cache strategy by content class (cdn.policy), e.g. {"html": "no-cache"}.
    cache_overrides = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="website_name_unique_per_tenant"),
            models.CheckConstraint(condition=_in_choices("status", WebsiteStatus), name="website_status_valid"),
            models.CheckConstraint(condition=~models.Q(name=""), name="website_name_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from cdn.policy import validate_overrides

        try:
            validate_overrides(self.cache_overrides)
        except ValueError as exc:
            raise ValidationError({"cache_overrides": str(exc)}) from exc
        if not isinstance(self.cdn_config, dict):
            raise ValidationError({"cdn_config": 'must be an object, e.g. {"distribution_id": "E123"}'})


def new_verification_token() -> str:
    return secrets.token_hex(16)


class Hostname(models.Model):
    """A hostname a website answers to once verified: `_platform-challenge.<hostname>` holds its token in
    DNS (tenants/verification.py). Verified by one website at most, case-insensitively; several websites
    may wait for the same name (only the one its owner's DNS names ever verifies)."""

    Status = HostnameStatus

    website = models.ForeignKey(Website, on_delete=models.CASCADE, related_name="hostnames")
    hostname = models.CharField(max_length=253)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    verification_token = models.CharField(max_length=64, default=new_verification_token, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    # The current round of verification attempts began here (creation, a re-check asked for, a lapse).
    verification_started_at = models.DateTimeField(default=timezone.now)
    checked_at = models.DateTimeField(null=True, blank=True)
    # When the next automatic check is due; null: none (failed, waiting for a re-check to be asked for).
    next_check_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    # Unsuccessful checks in a row (the backoff), and since when a verified hostname's record is missing.
    check_failures = models.PositiveIntegerField(default=0)
    record_missing_since = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["hostname"]
        constraints = [
            models.UniqueConstraint(
                Lower("hostname"), condition=models.Q(status="verified"), name="hostname_verified_unique_ci"
            ),
            models.UniqueConstraint(fields=["website", "hostname"], name="hostname_unique_per_website"),
            models.CheckConstraint(condition=models.Q(hostname=Lower("hostname")), name="hostname_lowercase"),
            models.CheckConstraint(condition=~models.Q(hostname=""), name="hostname_not_empty"),
            models.CheckConstraint(condition=_in_choices("status", HostnameStatus), name="hostname_status_valid"),
            models.CheckConstraint(
                condition=~models.Q(status="verified") | models.Q(verified_at__isnull=False),
                name="hostname_verified_has_time",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_check_at"], condition=models.Q(next_check_at__isnull=False), name="hostname_check_due"
            )
        ]

    def __str__(self) -> str:
        return self.hostname

    def clean(self) -> None:
        from .hostnames import normalize_hostname

        self.hostname = normalize_hostname(self.hostname)

    @property
    def challenge_name(self) -> str:
        from .dns_challenge import challenge_name

        return challenge_name(self.hostname)


class Deployment(LeasedJob):
    """A version of a website. While it runs, its worker holds a lease (core/leases.py)."""

    Status = DeploymentStatus
    Trigger = DeploymentTrigger

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    website = models.ForeignKey(Website, on_delete=models.CASCADE, related_name="deployments")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.API)
    description = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    # The uploaded archive, kept in object storage so any worker can process it.
    bundle_key = models.CharField(max_length=500, blank=True)
    bundle_size = models.PositiveBigIntegerField(null=True, blank=True)
    # Where the files of this deployment live: an immutable, per-deployment object-storage prefix.
    storage_prefix = models.CharField(max_length=500, blank=True)
    file_count = models.PositiveIntegerField(null=True, blank=True)
    total_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    # {path: {"sha256", "size", "content_type"}}: what the origin serves and what deploys diff.
    manifest = models.JSONField(default=dict, blank=True)
    # A rollback re-activates the files of this earlier deployment.
    source_deployment = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["website", "number"], name="deployment_number_unique_per_website"),
            models.CheckConstraint(condition=models.Q(number__gte=1), name="deployment_number_positive"),
            models.CheckConstraint(condition=_in_choices("status", DeploymentStatus), name="deployment_status_valid"),
            models.CheckConstraint(
                condition=_in_choices("trigger", DeploymentTrigger), name="deployment_trigger_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(finished_at__isnull=True)
                | models.Q(started_at__isnull=False, finished_at__gte=models.F("started_at")),
                name="deployment_finished_after_started",
            ),
        ]
        indexes = [models.Index(fields=["website", "-number"], name="deployment_latest_idx")]

    def __str__(self) -> str:
        return f"{self.website} #{self.number}"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None
