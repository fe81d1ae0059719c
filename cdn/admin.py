from django.contrib import admin

from console.workflows import OperatorAdminMixin

from .models import Invalidation, ProviderRequest


class ProviderRequestInline(admin.TabularInline):
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
class InvalidationAdmin(OperatorAdminMixin, admin.ModelAdmin):
    view_only = True
    list_display = ["website", "backend", "status", "path_count", "reason", "error_summary", "requested_at",
                    "completed_at"]  # fmt: skip
    list_filter = ["status", "backend", "requested_at"]
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
        return invalidation.error[:120]

    def has_add_permission(self, request):
        return False


@admin.register(ProviderRequest)
class ProviderRequestAdmin(OperatorAdminMixin, admin.ModelAdmin):
    view_only = True
    list_display = ["website", "backend", "target", "status", "attempts", "provider_id", "path_count", "created_at",
                    "completed_at"]  # fmt: skip
    list_filter = ["status", "backend", "created_at"]
    search_fields = ["website__name", "provider_id", "id", "target"]
    list_select_related = ["website"]
    readonly_fields = [
        "id", "website", "backend", "target", "provider_id", "paths", "hostnames", "status", "error", "attempts",
        "not_before",
        "lease_expires_at", "created_at", "submitted_at", "completed_at",
    ]  # fmt: skip
    exclude = ["lease_owner"]

    @admin.display(description="Paths")
    def path_count(self, request):
        return len(request.paths)

    def has_add_permission(self, request):
        return False
