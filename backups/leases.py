"""Backups' lease policy, on the one lease of core/leases.py: nothing stays "running" after its process
is gone.

A backup run, restore drill or tenant export is created "running" with a lease its process takes
(`lease_fields`), renewed every BACKUP_LEASE_SECONDS / 4 by a heartbeat thread (`lease_held`) while its
work blocks in pgBackRest or a long read. A killed worker, a lost primary or a power cut stop the
renewals; `leases_reconcile` (a beat task) then fails every running row whose lease ran out, naming the
process that stopped: failed at once, not retried (unlike a deployment or a CDN request).
"""

import logging
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from core.leases import Lease, lease_expired, lease_kept, lease_process, lease_taken

from .models import BackupRun, RestoreVerification, RunStatus, TenantExport

logger = logging.getLogger(__name__)

LEASED_MODELS = (BackupRun, RestoreVerification, TenantExport)


def lease_seconds() -> float:
    return float(settings.BACKUP_LEASE_SECONDS)


def lease_fields() -> dict:
    """The fields a new running row starts with: held by this process."""
    return lease_taken(lease_seconds())


def lease_held(row) -> AbstractContextManager[Lease]:
    """Renew the row's lease from a heartbeat thread for as long as the block runs."""
    return lease_kept(Lease.of(row, lease_seconds()))


def lease_renewed_at(row) -> datetime | None:
    """The row's last heartbeat: a renewal sets the expiry one lease ahead, so no column of its own."""
    return row.lease_expires_at - timedelta(seconds=lease_seconds()) if row.lease_expires_at else None


def leases_reconcile() -> dict[str, int]:
    """Fail every running row whose lease ran out (its process is gone); returns how many per model."""
    now = timezone.now()
    failed = {}
    for model in LEASED_MODELS:
        stale = lease_expired(model._base_manager.filter(status=RunStatus.RUNNING), now=now)
        count = 0
        for row in stale.only("pk", "lease_owner", "lease_expires_at"):
            reason = (
                f"the process running it ({lease_process(row.lease_owner) or 'unknown'}) stopped: "
                f"no heartbeat since {lease_renewed_at(row):%Y-%m-%d %H:%M:%S} UTC, "
                f"lease expired at {row.lease_expires_at:%Y-%m-%d %H:%M:%S} UTC"
            )
            # Conditional on the lease still being expired: a late heartbeat wins over the reconcile.
            count += model._base_manager.filter(
                pk=row.pk, status=RunStatus.RUNNING, lease_expires_at=row.lease_expires_at
            ).update(status=RunStatus.FAILED, error=reason, finished_at=now)
            logger.error("%s %s marked failed: %s", model.__name__, row.pk, reason)
        failed[model._meta.label_lower] = count
    return failed
