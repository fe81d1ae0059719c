import uuid

from django.db import models

from core.leases import LeasedJob


class InvalidationStatus(models.TextChoices):
    PENDING = "pending"  # waiting for its batching window, provider capacity or a retry
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed"
    FAILED = "failed"


# The check constraint of both tables that record a purge.
_STATUS_VALID = models.Q(status__in=InvalidationStatus.values)


class Purge(models.Model):
    """What an invalidation and a provider request both record: paths purged through one backend, and how
    that went."""

    Status = InvalidationStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    backend = models.CharField(max_length=50)
    # Canonical paths (cdn.paths), as an invalidation was asked for them; a provider request carries its
    # invalidations' paths, and their hostnames below.
    paths = models.JSONField(default=list)
    # Hostnames purged besides the website's own (ones it stopped answering to: removed, or lapsed).
    hostnames = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class Invalidation(Purge):
    """A purge asked for by a client (API, admin, command, deploy): the record whose id it was given.

    Requests within the batching window are sent together: each invalidation links to the provider
    requests that carry its paths (`requests`), and its status follows theirs. Coalescing never deletes
    an invalidation.
    """

    website = models.ForeignKey("tenants.Website", on_delete=models.CASCADE, related_name="invalidations")
    reason = models.CharField(max_length=200, blank=True)
    requests = models.ManyToManyField("ProviderRequest", related_name="invalidations", blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            models.CheckConstraint(condition=_STATUS_VALID, name="invalidation_status_valid"),
        ]
        indexes = [models.Index(fields=["website", "status"], name="invalidation_website_status")]

    def __str__(self) -> str:
        return f"{self.website} {self.status} ({len(self.paths)} paths)"


class ProviderRequest(LeasedJob, Purge):
    """One request to a CDN provider (a CloudFront invalidation, a Cloudflare purge, PURGE/BANs to Varnish).

    Sent under a lease; a failure is retried with a growing delay until CDN_INVALIDATION_MAX_ATTEMPTS,
    then the request and the invalidations it carries are failed with the error.
    """

    website = models.ForeignKey("tenants.Website", on_delete=models.CASCADE, related_name="cdn_requests")
    # The provider-side thing purged (distribution id, zone id, node list) and the provider's request id.
    target = models.CharField(max_length=200, blank=True)
    provider_id = models.CharField(max_length=200, blank=True)
    # A retried or deferred request is not sent before this time.
    not_before = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=_STATUS_VALID, name="provider_request_status_valid"),
        ]
        indexes = [
            models.Index(fields=["website", "status"], name="provider_request_website"),
            models.Index(fields=["status", "backend", "target"], name="provider_request_in_progress"),
        ]

    def __str__(self) -> str:
        return f"{self.backend} {self.provider_id or self.pk} {self.status} ({len(self.paths)} paths)"

    @property
    def wildcard_count(self) -> int:
        return sum(1 for path in self.paths if path.endswith("*"))
