from django.contrib import admin, messages

from platform_site.exceptions import ApplicationError

from . import services
from .models import Deployment, Hostname, Tenant, Website


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "tier", "status", "website_count", "created_at"]
    list_filter = ["tier", "status", "created_at"]
    search_fields = ["name", "slug", "id"]
    readonly_fields = ["id", "status", "suspended_at", "suspension_reason", "created_at", "updated_at"]
    prepopulated_fields = {"slug": ["name"]}
    actions = ["suspend_selected", "reactivate_selected"]

    @admin.display(description="Websites")
    def website_count(self, tenant):
        return tenant.websites.count()

    @admin.action(description="Suspend selected tenants (API access stops at once)")
    def suspend_selected(self, request, queryset):
        for tenant in queryset:
            try:
                services.tenant_suspend(tenant=tenant, reason=f"suspended by {request.user} in the admin")
            except ApplicationError as exc:
                self.message_user(request, f"{tenant}: {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"{tenant} suspended.", messages.SUCCESS)

    @admin.action(description="Reactivate selected tenants")
    def reactivate_selected(self, request, queryset):
        for tenant in queryset:
            try:
                services.tenant_reactivate(tenant=tenant)
            except ApplicationError as exc:
                self.message_user(request, f"{tenant}: {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"{tenant} reactivated.", messages.SUCCESS)


class HostnameInline(admin.TabularInline):
    model = Hostname
    extra = 1
    readonly_fields = ["created_at"]


class DeploymentInline(admin.TabularInline):
    model = Deployment
    extra = 0
    fields = ["number", "status", "trigger", "created_at", "finished_at"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True
    ordering = ["-number"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Website)
class WebsiteAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "status", "hostname_list", "active_deployment", "updated_at"]
    list_filter = ["status", "tenant__tier", "created_at"]
    search_fields = ["name", "hostnames__hostname", "tenant__name", "tenant__slug", "id"]
    list_select_related = ["tenant", "active_deployment"]
    autocomplete_fields = ["tenant"]
    readonly_fields = ["id", "active_deployment", "created_at", "updated_at"]
    inlines = [HostnameInline, DeploymentInline]

    @admin.display(description="Hostnames")
    def hostname_list(self, website):
        return ", ".join(h.hostname for h in website.hostnames.all())

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("hostnames")


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ["__str__", "status", "trigger", "created_at", "started_at", "finished_at"]
    list_filter = ["status", "trigger", "created_at"]
    search_fields = ["website__name", "website__tenant__name", "id"]
    list_select_related = ["website", "website__tenant"]
    readonly_fields = [
        "id", "website", "number", "status", "trigger", "description", "error",
        "created_at", "started_at", "finished_at",
    ]  # fmt: skip

    def has_add_permission(self, request):
        return False
