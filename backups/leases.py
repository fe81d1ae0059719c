"""Leases of running backups, drills and exports: nothing stays "running" after its process is gone.

A row is created "running" with a lease (lease_expires_at); while its work goes on, a heartbeat thread
renews it every BACKUP_LEASE_SECONDS / 4. A killed worker, a lost primary or a power cut stop the
renewals; `leases_reconcile` (a beat task) then fails every running row whose lease ran out, with the
reason. Small and self-contained on purpose: one lease idea for every long job, to be shared later.
"""

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connections
from django.utils import timezone

from .models import BackupRun, RestoreVerification, RunStatus, TenantExport

logger = logging.getLogger(__name__)

LEASED_MODELS = (BackupRun, RestoreVerification, TenantExport)


def lease_seconds() -> float:
    return float(settings.BACKUP_LEASE_SECONDS)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


def lease_fields() -> dict:
    """The fields a new running row starts with."""
    now = timezone.now()
    return {"lease_expires_at": now + timedelta(seconds=lease_seconds()), "heartbeat_at": now, "worker": worker_name()}


def lease_renew(obj) -> bool:
    """Extend the lease of a running row; False when the row is no longer running (or the database is gone)."""
    now = timezone.now()
    try:
        updated = (
            type(obj)
            ._base_manager.filter(pk=obj.pk, status=RunStatus.RUNNING)
            .update(heartbeat_at=now, lease_expires_at=now + timedelta(seconds=lease_seconds()))
        )
    except DatabaseError as exc:
        logger.warning("lease of %s %s not renewed: %s", type(obj).__name__, obj.pk, exc.__class__.__name__)
        return False
    return bool(updated)


@contextlib.contextmanager
def lease_held(obj) -> Iterator[None]:
    """Renew obj's lease in a background thread for as long as the block runs."""
    stop = threading.Event()
    interval = max(lease_seconds() / 4, 0.5)

    def heartbeat() -> None:
        try:
            while not stop.wait(interval):
                lease_renew(obj)
        finally:
            # The thread's own database connection: closed, so none is left open on the primary.
            connections.close_all()

    thread = threading.Thread(target=heartbeat, name=f"lease-{type(obj).__name__}-{obj.pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def leases_reconcile() -> dict[str, int]:
    """Fail every running row whose lease ran out (its process is gone); returns how many per model."""
    now = timezone.now()
    failed = {}
    for model in LEASED_MODELS:
        stale = model._base_manager.filter(status=RunStatus.RUNNING, lease_expires_at__lt=now)
        count = 0
        for row in stale.only("pk", "worker", "heartbeat_at", "lease_expires_at"):
            heartbeat = f"{row.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC" if row.heartbeat_at else "never"
            reason = (
                f"the process running it ({row.worker or 'unknown'}) stopped: no heartbeat since {heartbeat}, "
                f"lease expired at {row.lease_expires_at:%Y-%m-%d %H:%M:%S} UTC"
            )
            # Conditional on the lease still being expired: a late heartbeat wins over the reconcile.
            count += model._base_manager.filter(
                pk=row.pk, status=RunStatus.RUNNING, lease_expires_at=row.lease_expires_at
            ).update(status=RunStatus.FAILED, error=reason, finished_at=now)
            logger.error("%s %s marked failed: %s", model.__name__, row.pk, reason)
        failed[model._meta.label_lower] = count
    return failed
