"""Leases for long-running jobs: nothing stays "running" forever.

A row that a worker is working on holds a lease: an owner token and an expiry time the worker renews
while it works. The token names the process (host:pid, then a tag that tells its leases apart), so a row
tells an operator which process holds it, or held it last. A job model mixes in `LeasedJob`.

Two ways to hold one, one lease:
- Claimed: a worker takes a queued row with `lease_claim` (one conditional UPDATE, so exactly one worker
  wins), renews at its checkpoints with `Lease.renew_if_due()` and writes its outcome only while it still
  holds the lease (`Lease.held()`), releasing it (`lease_released()`). Deployments (tenants) and CDN
  provider requests (cdn); webhook deliveries hold one lease per sending loop over the rows it sends (a
  Lease without pk).
- Taken at creation: a job run where it is asked for (backups, restore drills, tenant exports) creates
  its row with `lease_taken()` and renews from a thread (`lease_kept`) while its work blocks in a
  subprocess or a long statement, where it has no checkpoints.

A beat task of each app lists the rows whose lease ran out (`lease_expired`) and applies the app's policy:
retry them (a claim may take an expired lease over) or fail them with the reason once `attempts` reached
the job's limit (deployments, CDN), or fail them at once, naming the process that stopped (backups).
"""

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import DatabaseError, connections, models
from django.db.models import F, Q, QuerySet
from django.utils import timezone

logger = logging.getLogger(__name__)

OWNER_MAX_LENGTH = 64


class Leased(models.Model):
    """The lease of a row a worker is working on."""

    # host:pid:tag of the process holding the row (lease_owner_token).
    lease_owner = models.CharField(max_length=OWNER_MAX_LENGTH, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="The worker holding the job renews this while it works."
    )

    class Meta:
        abstract = True


class LeasedJob(Leased):
    """Fields of a job row that workers take with a lease, and how often one took it."""

    attempts = models.PositiveIntegerField(default=0, help_text="How many times a worker took this job.")

    class Meta:
        abstract = True


class LeaseLost(Exception):
    """The lease ran out and another worker (or the sweeper) took the job over: stop without writing."""


def lease_owner_token() -> str:
    """A new owner token, host:pid:tag. The random tag keeps two leases of one process apart (a job
    claimed again by the process that lost it); the host is cut, never the pid or the tag."""
    tail = f":{os.getpid()}:{uuid.uuid4().hex[:8]}"
    return socket.gethostname()[: OWNER_MAX_LENGTH - len(tail)] + tail


def lease_process(owner: str) -> str:
    """host:pid of the process an owner token names (a token of another shape is returned as it is)."""
    return owner.rsplit(":", 1)[0] if owner.count(":") >= 2 else owner


@dataclass
class Lease:
    model: type[models.Model]
    pk: object
    owner: str
    seconds: float
    _renewed_at: float = field(default_factory=time.monotonic)

    @classmethod
    def of(cls, row: models.Model, seconds: float) -> "Lease":
        """The lease a row holds now (one created with `lease_taken`)."""
        return cls(type(row), row.pk, row.lease_owner, seconds)

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
    owner = lease_owner_token()
    now = timezone.now()
    taken = (
        queryset.filter(pk=pk)
        .filter(claimable)
        .update(
            lease_owner=owner, lease_expires_at=now + timedelta(seconds=seconds), attempts=F("attempts") + 1, **fields
        )
    )
    return Lease(queryset.model, pk, owner, seconds) if taken else None


def lease_taken(seconds: float) -> dict:
    """The fields of a row created already held by this process (a job run where it is asked for, with
    nothing to claim): its owner, its expiry and its one attempt. `Lease.of(row, seconds)` then holds it."""
    return {
        "lease_owner": lease_owner_token(),
        "lease_expires_at": timezone.now() + timedelta(seconds=seconds),
        "attempts": 1,
    }


@contextlib.contextmanager
def lease_kept(lease: Lease) -> Iterator[Lease]:
    """Renew the lease from a background thread for as long as the block runs: for work that blocks (a
    subprocess, a long statement) between checkpoints. A renewal the database refuses is retried at the
    next beat; a lease taken over ends the renewals (the block itself goes on)."""
    stop = threading.Event()
    # A quarter of the lease: a renewal can fail twice and the lease still holds.
    interval = max(lease.seconds / 4, 0.5)

    def heartbeat() -> None:
        try:
            while not stop.wait(interval):
                try:
                    lease.renew()
                except DatabaseError as exc:
                    logger.warning("lease of %s %s not renewed: %s", lease.model.__name__, lease.pk,
                                   exc.__class__.__name__)  # fmt: skip
                except LeaseLost as exc:
                    logger.warning("%s; renewals stop", exc)
                    return
        finally:
            # The thread's own database connection: closed, so none is left open on the primary.
            connections.close_all()

    thread = threading.Thread(target=heartbeat, name=f"lease-{lease.model.__name__}-{lease.pk}", daemon=True)
    thread.start()
    try:
        yield lease
    finally:
        stop.set()
        thread.join(timeout=30)


def lease_ran_out(now=None) -> Q:
    """Rows whose holder stopped renewing (its worker died or hangs)."""
    return Q(lease_expires_at__lt=now or timezone.now())


def lease_expired(queryset: QuerySet, *, now=None) -> QuerySet:
    return queryset.filter(lease_ran_out(now))


def lease_released() -> dict:
    """The fields that end a lease, for the update that writes the job's outcome."""
    return {"lease_owner": "", "lease_expires_at": None}
