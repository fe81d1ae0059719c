import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from .keyformat import ENVIRONMENTS, KEY_PREFIX, LOOKUP_ID_LENGTH


class ApiKey(models.Model):
    """A tenant's API key. Only the lookup id, the SHA-256 of the key and its last four are stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200)
    environment = models.CharField(max_length=4, choices=[(env, env) for env in ENVIRONMENTS])
    lookup_id = models.CharField(max_length=LOOKUP_ID_LENGTH, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    last_four = models.CharField(max_length=4, editable=False)
    scopes = models.JSONField(default=list)
    # Requests a minute for this key instead of the tenant's tier limit.
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=200, blank=True)
    revoked_reason = models.CharField(max_length=500, blank=True)
    # Gathered in Redis per request and written here by a periodic task, never per request.
    last_used_at = models.DateTimeField(null=True, blank=True)
    rotated_to = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(environment__in=ENVIRONMENTS), name="apikey_environment_valid"),
            models.CheckConstraint(condition=~models.Q(name=""), name="apikey_name_not_empty"),
            models.CheckConstraint(
                condition=models.Q(rate_limit_per_minute__isnull=True) | models.Q(rate_limit_per_minute__gte=1),
                name="apikey_rate_limit_positive",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="apikey_tenant_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.display})"

    @property
    def prefix(self) -> str:
        return f"{KEY_PREFIX}_{self.environment}_"

    @property
    def display(self) -> str:
        """What lists show: the prefix and the last four, never more."""
        return f"{self.prefix}…{self.last_four}"

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


class ApiUsageMinute(models.Model):
    """Requests of one key in one minute, rolled up from Redis by a periodic task."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="usage")
    minute = models.DateTimeField()
    requests = models.PositiveIntegerField(default=0)
    client_errors = models.PositiveIntegerField(default=0)
    server_errors = models.PositiveIntegerField(default=0)
    rate_limited = models.PositiveIntegerField(default=0)
    latency_ms_sum = models.PositiveBigIntegerField(default=0)
    latency_ms_max = models.PositiveIntegerField(default=0)
    # Admitted requests weighted by their operations' cost: what the usage plan's windows counted.
    units = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = "API usage minute"
        ordering = ["-minute"]
        constraints = [models.UniqueConstraint(fields=["api_key", "minute"], name="usage_one_row_per_key_minute")]
        indexes = [models.Index(fields=["tenant", "minute"], name="usage_tenant_minute_idx")]

    def __str__(self) -> str:
        return f"{self.api_key_id} {self.minute:%Y-%m-%d %H:%M}"


class TenantUsageMonth(models.Model):
    """A tenant's units in one calendar month (UTC), as the gateway counted them against its quota.

    Written by the usage roll-up from Redis's month counter; the gateway seeds a counter Redis lost (a
    restart) from it, so a restart never hands a tenant a fresh month. The alert stamps make each
    `usage.quota.*` event go out once per month.
    """

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    month = models.DateField(help_text="The first day of the month.")
    units = models.PositiveBigIntegerField(default=0)
    warning_sent_at = models.DateTimeField(null=True, blank=True)
    exceeded_sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-month"]
        constraints = [models.UniqueConstraint(fields=["tenant", "month"], name="usage_one_row_per_tenant_month")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.month:%Y-%m}"
