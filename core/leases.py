"""Leases for long-running jobs: nothing stays "running" forever.

A row that a worker is working on holds a lease: an owner token and an expiry time the worker renews
while it works. A job model mixes in `LeasedJob`; a worker takes a row with `lease_claim` (one
conditional UPDATE, so exactly one worker wins), renews at its checkpoints with `Lease.renew_if_due()`
and writes its outcome only while it still holds the lease (`Lease.held()`). A beat task lists the rows
whose lease ran out (`lease_expired`) and retries them (a claim may take an expired lease over) or fails
them with the reason once `attempts` reached the job's limit.

Used by deployments (tenants) and CDN provider requests (cdn); meant for every long job (backups,
drills); webhook deliveries hold one lease per sending loop over the rows it sends (a Lease without pk).
"""

import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import models
from django.db.models import F, Q, QuerySet
from django.utils import timezone


class LeasedJob(models.Model):
    """Fields of a job row that workers take with a lease."""

    attempts = models.PositiveIntegerField(default=0, help_text="How many times a worker took this job.")
    lease_owner = models.CharField(max_length=64, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="The worker holding the job renews this while it works."
    )

    class Meta:
        abstract = True


class LeaseLost(Exception):
    """The lease ran out and another worker (or the sweeper) took the job over: stop without writing."""


@dataclass
class Lease:
    model: type[models.Model]
    pk: object
    owner: str
    seconds: float
    _renewed_at: float = field(default_factory=time.monotonic)

    def held(self) -> Q:
        """The condition a write by the holder adds, so a worker that lost the job writes nothing. With no
        pk the lease covers every row its owner took (a batch: webhook deliveries)."""
        return Q(lease_owner=self.owner) if self.pk is None else Q(pk=self.pk, lease_owner=self.owner)

    def renew(self) -> None:
        expires = timezone.now() + timedelta(seconds=self.seconds)
        renewed = self.model._default_manager.filter(self.held()).update(lease_expires_at=expires)
        self._renewed_at = time.monotonic()
        if not renewed and self.pk is not None:  # a batch may simply have nothing left to hold
            raise LeaseLost(f"{self.model.__name__} {self.pk}: the lease was taken over")

    def renew_if_due(self) -> None:
        """Renew when a third of the lease has passed: cheap enough to call at every checkpoint."""
        if time.monotonic() - self._renewed_at >= self.seconds / 3:
            self.renew()


def lease_claim(queryset: QuerySet, *, pk, seconds: float, claimable: Q, **fields) -> Lease | None:
    """Take the row `pk` if `claimable` holds for it (or its lease ran out): set `fields`, a new owner,
    an expiry, and count the attempt. None when another worker has it."""
    owner = uuid.uuid4().hex
    now = timezone.now()
    taken = (
        queryset.filter(pk=pk)
        .filter(claimable)
        .update(
            lease_owner=owner, lease_expires_at=now + timedelta(seconds=seconds), attempts=F("attempts") + 1, **fields
        )
    )
    return Lease(queryset.model, pk, owner, seconds) if taken else None


def lease_ran_out(now=None) -> Q:
    """Rows whose holder stopped renewing (its worker died or hangs)."""
    return Q(lease_expires_at__lt=now or timezone.now())


def lease_expired(queryset: QuerySet, *, now=None) -> QuerySet:
    return queryset.filter(lease_ran_out(now))


def lease_released() -> dict:
    """The fields that end a lease, for the update that writes the job's outcome."""
    return {"lease_owner": "", "lease_expires_at": None}
