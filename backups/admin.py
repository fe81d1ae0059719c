from django.contrib import admin, messages
from django.db import transaction
from django.shortcuts import redirect
from django.urls import path

from .models import BackupRun, RestoreVerification, TenantExport, Trigger


def _size(value):
    if value is None:
        return "-"
    return f"{value / 1024 / 1024:.1f} MiB"


@admin.register(BackupRun)
class BackupRunAdmin(admin.ModelAdmin):
    list_display = ["started_at", "kind", "status", "label", "engine", "repo", "size", "repo_size", "duration"]
    list_filter = ["status", "kind", "engine", "repo", "trigger", "started_at"]
    search_fields = ["label", "error", "wal_start", "wal_stop"]
    readonly_fields = [f.name for f in BackupRun._meta.fields]
    change_list_template = "admin/backups/backuprun/change_list.html"

    @admin.display(description="Size", ordering="size_bytes")
    def size(self, run):
        return _size(run.size_bytes)

    @admin.display(description="Repository size", ordering="repo_size_bytes")
    def repo_size(self, run):
        return _size(run.repo_size_bytes)

    @admin.display(description="Duration (s)")
    def duration(self, run):
        seconds = run.duration_seconds
        return "-" if seconds is None else f"{seconds:.1f}"

    def has_add_permission(self, request):
        return False

    def get_urls(self):
        views = [
            path("run-full/", self.admin_site.admin_view(self.run_full), name="backups_backuprun_run_full"),
            path("run-incr/", self.admin_site.admin_view(self.run_incr), name="backups_backuprun_run_incr"),
            path("verify/", self.admin_site.admin_view(self.verify_latest), name="backups_backuprun_verify"),
        ]
        return views + super().get_urls()

    def _enqueue(self, request, task, *args, description):
        if request.method != "POST":
            return redirect("admin:backups_backuprun_changelist")
        if not request.user.has_perm("backups.change_backuprun"):
            self.message_user(request, "You may not start backups.", messages.ERROR)
            return redirect("admin:backups_backuprun_changelist")
        transaction.on_commit(lambda: task.delay(*args))
        self.message_user(request, f"{description} queued on the backups queue.", messages.SUCCESS)
        return redirect("admin:backups_backuprun_changelist")

    def run_full(self, request):
        from .tasks import backup_on_demand

        return self._enqueue(request, backup_on_demand, "full", Trigger.ADMIN, description="Full backup")

    def run_incr(self, request):
        from .tasks import backup_on_demand

        return self._enqueue(request, backup_on_demand, "incr", Trigger.ADMIN, description="Incremental backup")

    def verify_latest(self, request):
        from .tasks import restore_drill

        return self._enqueue(request, restore_drill, description="Verification of the latest backup")


@admin.register(RestoreVerification)
class RestoreVerificationAdmin(admin.ModelAdmin):
    list_display = ["started_at", "status", "backup_run", "tables_checked", "finished_at", "trigger"]
    list_filter = ["status", "trigger", "started_at"]
    readonly_fields = [f.name for f in RestoreVerification._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(TenantExport)
class TenantExportAdmin(admin.ModelAdmin):
    list_display = ["started_at", "status", "tenant_count", "row_count", "size", "duration", "location"]
    list_filter = ["status", "trigger", "started_at"]
    search_fields = ["id", "location", "error"]
    readonly_fields = [f.name for f in TenantExport._meta.fields]
    change_list_template = "admin/backups/tenantexport/change_list.html"

    def get_urls(self):
        view = self.admin_site.admin_view(self.export_now)
        return [path("export-now/", view, name="backups_tenantexport_export_now"), *super().get_urls()]

    def export_now(self, request):
        from .tasks import tenant_export

        if request.method == "POST" and request.user.has_perm("backups.change_tenantexport"):
            transaction.on_commit(lambda: tenant_export.delay(Trigger.ADMIN))
            self.message_user(request, "Export of every tenant queued on the backups queue.", messages.SUCCESS)
        return redirect("admin:backups_tenantexport_changelist")

    @admin.display(description="Size", ordering="size_bytes")
    def size(self, export):
        return _size(export.size_bytes)

    @admin.display(description="Duration (s)")
    def duration(self, export):
        seconds = export.duration_seconds
        return "-" if seconds is None else f"{seconds:.1f}"

    def has_add_permission(self, request):
        return False
