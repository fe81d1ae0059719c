"""Endpoints, the event outbox, deliveries and their attempts."""

import uuid

from django.db import models

from core.leases import Leased


class Lane(models.TextChoices):
    FAST = "fast", "Fast (first attempts inline)"
    SLOW = "slow", "Slow (failing or slow receiver)"


class BreakerState(models.TextChoices):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open", "Half-open (probe in flight)"


class SignatureScheme(models.TextChoices):
    V1 = "v1", "v1: HMAC-SHA256 with a shared secret"
    V1A = "v1a", "v1a: ed25519 with a published public key"


class Endpoint(models.Model):
    """A tenant's webhook receiver: a URL and the event types (or wildcards) it subscribes to."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="webhook_endpoints")
    # Checked by the SSRF guard (webhooks/ssrf.py) at registration and at every delivery.
    url = models.CharField(max_length=2048)
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(default=list)
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # The signing keys, Fernet-encrypted with FIELD_ENCRYPTION_KEY: a whsec_ secret (v1) or a whsk_ ed25519
    # private key (v1a). The previous one signs too until it expires (a rotation's grace period).
    secret_encrypted = models.TextField()
    previous_secret_encrypted = models.TextField(blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # The current key's scheme, and for v1a keys their whpk_ public keys (published: receivers verify with them).
    signature_scheme = models.CharField(max_length=3, choices=SignatureScheme.choices, default=SignatureScheme.V1)
    public_key = models.CharField(max_length=64, blank=True)
    previous_public_key = models.CharField(max_length=64, blank=True)
    # Set at the first failure after a success; cleared by a success. Drives disabling after N days.
    failing_since = models.DateTimeField(null=True, blank=True)
    # Fairness and the circuit breaker (webhooks/policy.py): failures in a row, the lane the endpoint's
    # deliveries take, and the breaker's state (open: nothing is sent until one probe at breaker_probe_at).
    consecutive_failures = models.PositiveIntegerField(default=0)
    lane = models.CharField(max_length=10, choices=Lane.choices, default=Lane.FAST)
    breaker_state = models.CharField(max_length=10, choices=BreakerState.choices, default=BreakerState.CLOSED)
    breaker_opened_at = models.DateTimeField(null=True, blank=True)
    breaker_probe_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    Lane = Lane
    BreakerState = BreakerState

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["tenant", "is_active"], name="webhook_endpoint_tenant_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(signature_scheme__in=SignatureScheme.values), name="webhook_endpoint_scheme_valid"
            )
        ]

    def __str__(self) -> str:
        return self.url


class Event(models.Model):
    """The outbox: written in the transaction of the change, fanned out after commit."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="webhook_events")
    type = models.CharField(max_length=100)
    version = models.PositiveSmallIntegerField(default=1)
    data = models.JSONField()
    # Only for `ping` and similar: the one endpoint this event goes to, bypassing subscriptions.
    target_endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    fanned_out_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["created_at"], name="webhook_event_pending_idx", condition=models.Q(fanned_out_at__isnull=True)
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Delivery(Leased):
    """One event to one endpoint. Its id is the webhook-id header, stable across retries.

    Its lease is the sending worker's (core/leases.py): once it runs out, the sweeper marks the attempt
    lost and sends again."""

    Status = DeliveryStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No single-column indexes: the unique (event, endpoint) and the (endpoint, status, created) index lead
    # with them, and every extra index is one more write per delivery.
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Until when a queued task is expected to pick this up; past it, the sweeper queues it again.
    queued_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once_per_endpoint"),
            models.CheckConstraint(
                condition=models.Q(status__in=DeliveryStatus.values), name="webhook_delivery_status_valid"
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], name="webhook_delivery_due_idx", condition=models.Q(status="pending")
            ),
            models.Index(fields=["endpoint", "status", "-created_at"], name="webhook_delivery_endpoint_idx"),
            models.Index(
                fields=["lease_owner"], name="webhook_delivery_leased_idx", condition=~models.Q(lease_owner="")
            ),
        ]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"msg_{self.id.hex}"

    @property
    def msg_id(self) -> str:
        return f"msg_{self.id.hex}"


class AttemptState(models.TextChoices):
    STARTED = "started", "Started (on the wire)"
    FINISHED = "finished"
    LOST = "lost", "Lost (the worker stopped before its outcome)"


class Attempt(models.Model):
    """One HTTP request of a delivery, whatever its outcome: recorded as started before it goes out."""

    State = AttemptState

    # Indexed by the unique (delivery, number), which leads with it.
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts", db_index=False)
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    succeeded = models.BooleanField()
    error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.CharField(max_length=1024, blank=True)
    manual = models.BooleanField(default=False)
    state = models.CharField(max_length=10, choices=AttemptState.choices, default=AttemptState.FINISHED)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_number_unique")]

    def __str__(self) -> str:
        return f"{self.delivery} #{self.number}"
