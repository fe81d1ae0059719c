from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils import formats, timezone
from unfold.admin import ModelAdmin

from console.display import status_badge, titled
from console.workflows import OperatorAdminMixin, Workflow, confirmed_operation, object_button
from core.enqueue import enqueue_on_commit

from .engines import get_engine
from .engines.sqlite import INCREMENTAL_MESSAGE
from .leases import lease_renewed_at
from .models import BackupRun, RestoreVerification, TenantExport, Trigger
from .restore_admin import tenant_restore_workflow


def _size(value):
    if value is None:
        return "-"
    return f"{value / 1024 / 1024:.1f} MiB"


class _RunAdmin(OperatorAdminMixin, ModelAdmin):
    """What the three run records share: read-only (the runs create them), a duration column, and
    confirmed, audited buttons that queue a task after commit."""

    view_only = True

    @admin.display(description="Duration (s)")
    def duration(self, run):
        seconds = run.duration_seconds
        return "-" if seconds is None else f"{seconds:.1f}"

    @admin.display(description="Last heartbeat")
    def last_heartbeat(self, run):
        renewed = lease_renewed_at(run)
        # Shown like the row's own date fields.
        return formats.localize(timezone.template_localtime(renewed)) if renewed else "-"

    def has_add_permission(self, request):
        return False

    def _enqueue(self, request, task, *args, audit_action, permission, title, question, done_message,
                 submit_label=None):  # fmt: skip
        """Confirm with a reason, then queue the task after commit; audited by the console."""

        def enqueue(_nothing, data):
            enqueue_on_commit(task, *args)
            return {"task": task.name, "args": list(args)}

        opts = self.model._meta
        workflow = Workflow(
            audit_action=audit_action, permission=permission, title=title, question=question,
            submit_label=submit_label or "Yes, " + title[0].lower() + title[1:], done_message=done_message,
            perform=enqueue,
        )  # fmt: skip
        back_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        return confirmed_operation(self, request, workflow, back_url=back_url)


@admin.register(BackupRun)
class BackupRunAdmin(_RunAdmin):
    list_display = ["status_badge", "started_at", "kind", "label", "trigger", "size", "delta", "duration"]
    list_display_links = ["started_at"]
    list_filter = ["status", "kind", "engine", "repo", "trigger", ("started_at", titled("start date"))]
    status_badge = status_badge()
    search_fields = ["label", "error", "wal_start", "wal_stop"]
    readonly_fields = [f.name for f in BackupRun._meta.fields] + ["last_heartbeat"]
    change_list_template = "admin/backups/backuprun/change_list.html"

    @admin.display(description="Size", ordering="size_bytes")
    def size(self, run):
        return _size(run.size_bytes)

    @admin.display(description="Delta (incremental)", ordering="delta_bytes")
    def delta(self, run):
        return _size(run.delta_bytes)

    @admin.display(description="Repository size", ordering="repo_size_bytes")
    def repo_size(self, run):
        return _size(run.repo_size_bytes)

    def get_urls(self):
        views = [
            path("run-full/", self.admin_site.admin_view(self.run_full), name="backups_backuprun_run_full"),
            path("run-incr/", self.admin_site.admin_view(self.run_incr), name="backups_backuprun_run_incr"),
            path("verify/", self.admin_site.admin_view(self.verify_latest), name="backups_backuprun_verify"),
        ]
        return views + super().get_urls()

    def run_full(self, request):
        return self._run_now(request, "full", title="Run a full backup now",
                             question="Start a full pgBackRest backup of the primary now?",
                             done_message="Full backup queued on the backups queue.")  # fmt: skip

    def changelist_view(self, request, extra_context=None):
        engine = get_engine()
        extra_context = {"supports_incremental": engine.supports_incremental, **(extra_context or {})}
        if not engine.supports_incremental:
            extra_context["incremental_note"] = INCREMENTAL_MESSAGE
        return super().changelist_view(request, extra_context)

    def run_incr(self, request):
        if not get_engine().supports_incremental:
            messages.error(request, INCREMENTAL_MESSAGE)
            return HttpResponseRedirect(reverse("admin:backups_backuprun_changelist"))
        return self._run_now(request, "incr", title="Run an incremental backup now",
                             question="Start an incremental backup of the primary now?",
                             done_message="Incremental backup queued on the backups queue.")  # fmt: skip

    def _run_now(self, request, kind: str, **texts):
        from .tasks import backup_on_demand_task

        return self._enqueue(request, backup_on_demand_task, kind, Trigger.ADMIN, audit_action="backup.run",
                             permission="console.run_backup", **texts)  # fmt: skip

    def verify_latest(self, request):
        from .tasks import restore_drill_task

        # The drill records who asked for it: the admin, not the weekly schedule.
        return self._enqueue(
            request, restore_drill_task, None, Trigger.ADMIN, audit_action="backup.verify", permission="console.verify_backup",
            title="Verify the latest backup",
            question="Restore the latest successful backup into a scratch cluster and check every table?",
            done_message="Verification of the latest backup queued on the backups queue.",
        )  # fmt: skip


@admin.register(RestoreVerification)
class RestoreVerificationAdmin(_RunAdmin):
    list_display = ["status_badge", "started_at", "backup_run", "tables_checked", "finished_at", "trigger"]
    list_display_links = ["started_at"]
    list_filter = ["status", "trigger", ("started_at", titled("start date"))]
    status_badge = status_badge()
    readonly_fields = [f.name for f in RestoreVerification._meta.fields] + ["last_heartbeat"]


@admin.register(TenantExport)
class TenantExportAdmin(_RunAdmin):
    list_display = ["status_badge", "started_at", "tenant_count", "row_count", "size", "duration", "location"]
    list_display_links = ["started_at"]
    list_filter = ["status", "trigger", ("started_at", titled("start date"))]
    status_badge = status_badge()
    search_fields = ["id", "location", "error"]
    readonly_fields = [f.name for f in TenantExport._meta.fields] + ["last_heartbeat"]
    change_list_template = "admin/backups/tenantexport/change_list.html"
    actions = ["restore_tenant"]
    actions_detail = ["restore_detail"]
    restore_detail = object_button("restore_detail", "restore_tenant", description="Restore a tenant from this export",
                                   url_path="restore", permission="restore_tenant", icon="settings_backup_restore")  # fmt: skip

    def get_urls(self):
        view = self.admin_site.admin_view(self.export_now)
        return [path("export-now/", view, name="backups_tenantexport_export_now"), *super().get_urls()]

    def export_now(self, request):
        from .tasks import tenant_export_task

        return self._enqueue(
            request, tenant_export_task, Trigger.ADMIN, audit_action="backup.export", permission="console.run_backup",
            title="Export all tenants now", question="Export every tenant's rows from one snapshot now?",
            submit_label="Yes, export now", done_message="Export of every tenant queued on the backups queue.",
        )  # fmt: skip

    @admin.action(description="Restore one tenant from this export (dry run first)", permissions=["restore_tenant"])
    def restore_tenant(self, request, queryset):
        return tenant_restore_workflow(self, request, queryset)

    @admin.display(description="Size", ordering="size_bytes")
    def size(self, export):
        return _size(export.size_bytes)
