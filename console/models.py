from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditOutcome(models.TextChoices):
    DONE = "done"
    REFUSED = "refused"  # the service refused (e.g. already revoked): nothing changed
    DRY_RUN = "dry_run", "Dry run"  # looked at, nothing changed on purpose


class AuditSource(models.TextChoices):
    ADMIN = "admin"
    API = "api", "API"
    CLI = "cli", "Command line"


class AuditLogEntry(models.Model):
    """One operator action on one target: who, when, what, on which object, why, and how it ended.

    Append-only: written by console.services.audit_record in the same transaction as the action, never
    changed or deleted from the console.
    """

    Outcome = AuditOutcome
    Source = AuditSource

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Kept when the user account is deleted later; for a command, the OS user that ran it.
    actor_username = models.CharField(max_length=150)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.ADMIN)
    action = models.CharField(max_length=64, db_index=True)  # "<entity>.<verb>", e.g. "apikey.revoke"
    target_type = models.CharField(max_length=100, blank=True)  # "<app_label>.<model>"
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.DONE)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"
        default_permissions = ("view",)
        # The operator permissions, granted through the roles in console/roles.py.
        permissions = [
            ("suspend_tenant", "Can suspend and reactivate tenants"),
            ("change_tier", "Can change a tenant's tier and override its API limit"),
            ("revoke_apikey", "Can revoke and rotate API keys"),
            ("invalidate_cdn", "Can invalidate a website's CDN cache"),
            ("configure_cdn", "Can change a website's CDN backend and provider ids"),
            ("redeliver_webhook", "Can redeliver and replay webhooks"),
            ("toggle_endpoint", "Can disable and enable webhook endpoints"),
            ("run_backup", "Can run a backup now"),
            ("verify_backup", "Can verify the latest backup"),
            ("restore_tenant", "Can restore a tenant export"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(outcome__in=AuditOutcome.values), name="audit_outcome_valid"),
            models.CheckConstraint(condition=models.Q(source__in=AuditSource.values), name="audit_source_valid"),
            models.CheckConstraint(condition=~models.Q(action=""), name="audit_action_not_empty"),
        ]
        indexes = [models.Index(fields=["target_type", "target_id"], name="audit_target_idx")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_username} {self.action} {self.target_repr}"
