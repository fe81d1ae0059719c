from django.contrib import admin
from unfold.admin import ModelAdmin

from .display import status_badge, titled
from .models import AuditLogEntry
from .workflows import OperatorAdminMixin


@admin.register(AuditLogEntry)
class AuditLogEntryAdmin(OperatorAdminMixin, ModelAdmin):
    list_display = ["outcome_badge", "created_at", "actor_username", "source", "action", "target_repr", "reason"]
    list_display_links = ["created_at"]
    list_filter = ["outcome", "action", "source", ("created_at", titled("date"))]
    outcome_badge = status_badge("outcome", description="Outcome")
    search_fields = ["actor_username", "action", "target_id", "target_repr", "reason"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "created_at", "actor", "actor_username", "source", "action", "target_type", "target_id", "target_repr", "reason",
        "outcome", "detail",
    ]  # fmt: skip

    # Append-only: entries are written by the workflows, never by hand, changed or deleted.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
