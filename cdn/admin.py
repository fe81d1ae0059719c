from django.contrib import admin
from unfold.admin import ModelAdmin, TabularInline

from console.display import status_badge, titled
from console.workflows import OperatorAdminMixin

from .models import Invalidation, ProviderRequest


class ProviderRequestInline(TabularInline):
    model = Invalidation.requests.through
    verbose_name = "provider request"
    verbose_name_plural = "Provider requests carrying these paths"
    fields = ["providerrequest"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Invalidation)
class InvalidationAdmin(OperatorAdminMixin, ModelAdmin):
    view_only = True
    list_display = ["status_badge", "website", "backend", "path_count", "reason", "error_summary", "requested_at"]
    list_display_links = ["website"]
    list_filter = ["status", "backend", ("requested_at", titled("request date"))]
    status_badge = status_badge()
    search_fields = ["website__name", "id", "requests__provider_id"]
    list_select_related = ["website"]
    readonly_fields = [
        "id", "website", "backend", "paths", "hostnames", "reason", "status", "error", "requested_at", "submitted_at",
        "completed_at",
    ]  # fmt: skip
    exclude = ["requests"]
    inlines = [ProviderRequestInline]

    @admin.display(description="Paths")
    def path_count(self, invalidation):
        return len(invalidation.paths)

    @admin.display(description="Error")
    def error_summary(self, invalidation):
        return invalidation.error[:80]

    def has_add_permission(self, request):
        return False


@admin.register(ProviderRequest)
class ProviderRequestAdmin(OperatorAdminMixin, ModelAdmin):
    view_only = True
    list_display = ["status_badge", "website", "backend", "target", "attempts", "provider_id", "path_count",
                    "created_at"]  # fmt: skip
    list_display_links = ["website"]
    list_filter = ["status", "backend", ("created_at", titled("creation date"))]
    status_badge = status_badge()
    search_fields = ["website__name", "provider_id", "id", "target"]
    list_select_related = ["website"]
    readonly_fields = [
        "id", "website", "backend", "target", "provider_id", "paths", "hostnames", "status", "error", "attempts",
        "not_before",
        "lease_owner", "lease_expires_at", "created_at", "submitted_at", "completed_at",
    ]  # fmt: skip

    @admin.display(description="Paths")
    def path_count(self, request):
        return len(request.paths)

    def has_add_permission(self, request):
        return False
