import uuid

from django.db import models


class InvalidationStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for its batching window or for provider capacity
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class Invalidation(models.Model):
    """One invalidation request to a CDN provider for one website (one provider request when sent)."""

    Status = InvalidationStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    website = models.ForeignKey("tenants.Website", on_delete=models.CASCADE, related_name="invalidations")
    backend = models.CharField(max_length=50)
    # The provider-side thing purged (distribution id, zone id, node list) and the provider's request id.
    target = models.CharField(max_length=200, blank=True)
    provider_id = models.CharField(max_length=200, blank=True)
    paths = models.JSONField(default=list)
    # Hostnames purged besides the website's own (ones it stopped answering to: removed, or lapsed).
    hostnames = models.JSONField(default=list, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    requested_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=InvalidationStatus.values), name="invalidation_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["website", "status"], name="invalidation_website_status"),
            models.Index(fields=["status", "backend", "target"], name="invalidation_in_progress"),
        ]

    def __str__(self) -> str:
        return f"{self.website} {self.status} ({len(self.paths)} paths)"

    @property
    def wildcard_count(self) -> int:
        return sum(1 for path in self.paths if path.endswith("*"))
