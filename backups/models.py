import uuid

from django.db import models

from core.leases import LeasedJob


class RunStatus(models.TextChoices):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"


class Trigger(models.TextChoices):
    SCHEDULE = "schedule"
    ADMIN = "admin"
    COMMAND = "command"
    REPOSITORY = "repository", "Found in repository"


class BackupKind(models.TextChoices):
    FULL = "full"
    INCR = "incr", "Incremental"
    DIFF = "diff", "Differential"


# Backup runs, drills and exports are created "running" with a lease their process renews while it works
# (backups/leases.py); its owner (host:pid:tag) stays on the row, for the operator reading a failed one.
class BackupRun(LeasedJob):
    """One physical backup: what we asked for, and what the engine's repository says it holds."""

    Status = RunStatus

    engine = models.CharField(max_length=40)
    repo = models.PositiveSmallIntegerField(default=1)
    kind = models.CharField(max_length=10, choices=BackupKind.choices)
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.COMMAND)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.RUNNING)
    label = models.CharField(max_length=100, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    backup_started_at = models.DateTimeField(null=True, blank=True)
    backup_stopped_at = models.DateTimeField(null=True, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    repo_size_bytes = models.BigIntegerField(null=True, blank=True)
    # What an incremental or differential added: database bytes changed, and what they took in the repository.
    delta_bytes = models.BigIntegerField(null=True, blank=True)
    repo_delta_bytes = models.BigIntegerField(null=True, blank=True)
    wal_start = models.CharField(max_length=40, blank=True)
    wal_stop = models.CharField(max_length=40, blank=True)
    lsn_start = models.CharField(max_length=40, blank=True)
    lsn_stop = models.CharField(max_length=40, blank=True)
    error = models.TextField(blank=True)
    # Row counts of tenant-owned tables just before and just after the backup: a drill checks the
    # restored copy lies between the two.
    row_counts = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["engine", "repo", "label"], condition=~models.Q(label=""), name="backuprun_label_unique"
            )
        ]
        indexes = [models.Index(fields=["status", "-started_at"], name="backuprun_status_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.label or self.pk} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        # The repository's own times when known: a set found there (backup_sync) was not started by us.
        if self.backup_started_at and self.backup_stopped_at:
            return (self.backup_stopped_at - self.backup_started_at).total_seconds()
        if self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class RestoreVerification(LeasedJob):
    """A restore drill: a backup restored into a scratch cluster and checked."""

    Status = RunStatus

    backup_run = models.ForeignKey(BackupRun, on_delete=models.SET_NULL, null=True, related_name="verifications")
    repo = models.PositiveSmallIntegerField(null=True, blank=True)
    # The drill's scratch folder while it exists: the reaper removes it (and stops its cluster) once the
    # drill is no longer running.
    scratch_path = models.CharField(max_length=500, blank=True)
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.COMMAND)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    tables_checked = models.PositiveIntegerField(default=0)
    details = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"verification {self.pk} ({self.status})"


class TenantExport(LeasedJob):
    """One export of every tenant's rows, from one snapshot, as a versioned archive."""

    Status = RunStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.COMMAND)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.RUNNING)
    location = models.CharField(max_length=500, blank=True)
    schema_version = models.CharField(max_length=64, blank=True)
    tenant_count = models.PositiveIntegerField(default=0)
    row_count = models.PositiveBigIntegerField(default=0)
    size_bytes = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"tenant export {self.started_at:%Y-%m-%d %H:%M} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None
