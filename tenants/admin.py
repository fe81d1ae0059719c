from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

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
    actions = ["invalidate_cdn_cache", "rollback_selected"]

    @admin.action(description="Invalidate CDN cache")
    def invalidate_cdn_cache(self, request, queryset):
        """Whole site, or the paths typed in the form (one per line)."""
        from cdn.services import invalidation_request

        form = InvalidateCacheForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            paths = form.cleaned_data["paths"]
            for website in queryset:
                try:
                    invalidation = invalidation_request(website=website, paths=paths, reason=f"admin by {request.user}")
                except ApplicationError as exc:
                    detail = "; ".join(m for ms in exc.fields.values() for m in ms) or exc.message
                    self.message_user(request, f"{website}: {detail}", messages.ERROR)
                else:
                    self.message_user(
                        request,
                        f"{website}: invalidation of {len(invalidation.paths)} path(s) queued.",
                        messages.SUCCESS,
                    )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Invalidate CDN cache",
            "websites": queryset,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/tenants/website/invalidate_cdn_cache.html", context)

    @admin.action(description="Roll back to the previous deployment")
    def rollback_selected(self, request, queryset):
        for website in queryset:
            try:
                deployment = services.deployment_rollback(website=website)
            except ApplicationError as exc:
                self.message_user(request, f"{website}: {exc.message}", messages.WARNING)
            else:
                self.message_user(
                    request,
                    f"{website}: serving deployment #{deployment.source_deployment.number} again (#{deployment.number}).",
                    messages.SUCCESS,
                )

    @admin.display(description="Hostnames")
    def hostname_list(self, website):
        return ", ".join(h.hostname for h in website.hostnames.all())

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("hostnames")


class InvalidateCacheForm(forms.Form):
    paths = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "cols": 60}),
        required=False,
        help_text="One site-relative path per line (/about/, /blog/*). Empty: the whole site.",
    )

    def clean_paths(self) -> list[str]:
        from cdn.batching import normalize_path

        paths = [line.strip() for line in self.cleaned_data["paths"].splitlines() if line.strip()]
        try:
            return [normalize_path(path) for path in paths]
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ["__str__", "status", "trigger", "created_at", "started_at", "finished_at"]
    list_filter = ["status", "trigger", "created_at"]
    search_fields = ["website__name", "website__tenant__name", "id"]
    list_select_related = ["website", "website__tenant"]
    readonly_fields = [
        "id", "website", "number", "status", "trigger", "description", "error",
        "created_at", "started_at", "finished_at", "bundle_key", "bundle_size", "storage_prefix",
        "file_count", "total_bytes", "source_deployment",
    ]  # fmt: skip
    exclude = ["manifest"]

    def has_add_permission(self, request):
        return False
