from django.contrib import admin

from console.workflows import OperatorAdminMixin

from .models import Invalidation


@admin.register(Invalidation)
class InvalidationAdmin(OperatorAdminMixin, admin.ModelAdmin):
    view_only = True
    list_display = ["website", "backend", "status", "path_count", "provider_id", "requested_at", "completed_at"]
    list_filter = ["status", "backend", "requested_at"]
    search_fields = ["website__name", "provider_id", "id"]
    list_select_related = ["website"]
    readonly_fields = [
        "id", "website", "backend", "target", "provider_id", "paths", "reason", "status", "error", "attempts",
        "requested_at", "submitted_at", "completed_at",
    ]  # fmt: skip

    @admin.display(description="Paths")
    def path_count(self, invalidation):
        return len(invalidation.paths)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
