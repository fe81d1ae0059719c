from django import forms
from django.contrib import admin

from console.workflows import OperatorAdminMixin, ReasonForm, Workflow, confirmed_action

from . import services
from .models import Deployment, Hostname, Tenant, Website


def _done(tenant: Tenant) -> dict:
    return {"status": tenant.status}


@admin.register(Tenant)
class TenantAdmin(OperatorAdminMixin, admin.ModelAdmin):
    list_display = ["name", "slug", "tier", "status", "website_count", "created_at"]
    list_filter = ["tier", "status", "created_at"]
    search_fields = ["name", "slug", "id"]
    readonly_fields = ["id", "status", "suspended_at", "suspension_reason", "created_at", "updated_at"]
    prepopulated_fields = {"slug": ["name"]}
    actions = ["suspend_selected", "reactivate_selected"]

    @admin.display(description="Websites")
    def website_count(self, tenant):
        return tenant.websites.count()

    @admin.action(description="Suspend selected tenants (API access stops at once)", permissions=["suspend_tenant"])
    def suspend_selected(self, request, queryset):
        return confirmed_action(self, request, queryset, Workflow(
            audit_action="tenant.suspend", permission="console.suspend_tenant", title="Suspend tenants",
            question="Suspend these tenants? Their API keys are refused from the next request on.",
            submit_label="Yes, suspend", done_message="{count} tenant(s) suspended.", danger=True,
            perform=lambda tenant, data: _done(services.tenant_suspend(tenant=tenant, reason=data["reason"])),
        ))  # fmt: skip

    @admin.action(description="Reactivate selected tenants", permissions=["suspend_tenant"])
    def reactivate_selected(self, request, queryset):
        return confirmed_action(self, request, queryset, Workflow(
            audit_action="tenant.reactivate", permission="console.suspend_tenant", title="Reactivate tenants",
            question="Reactivate these tenants? Their API keys work again from the next request on.",
            submit_label="Yes, reactivate", done_message="{count} tenant(s) reactivated.",
            perform=lambda tenant, data: _done(services.tenant_reactivate(tenant=tenant)),
        ))  # fmt: skip


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
class WebsiteAdmin(OperatorAdminMixin, admin.ModelAdmin):
    list_display = ["name", "tenant", "status", "hostname_list", "active_deployment", "updated_at"]
    list_filter = ["status", "tenant__tier", "created_at"]
    search_fields = ["name", "hostnames__hostname", "tenant__name", "tenant__slug", "id"]
    list_select_related = ["tenant", "active_deployment"]
    autocomplete_fields = ["tenant"]
    readonly_fields = ["id", "active_deployment", "created_at", "updated_at"]
    inlines = [HostnameInline, DeploymentInline]
    actions = ["invalidate_cdn_cache", "rollback_selected"]

    @admin.action(description="Invalidate CDN cache", permissions=["invalidate_cdn"])
    def invalidate_cdn_cache(self, request, queryset):
        """Whole site, or the paths typed in the form (one per line)."""
        from cdn.services import invalidation_request

        def invalidate(website, data):
            invalidation = invalidation_request(website=website, paths=data["paths"], reason=data["reason"])
            return {"invalidation": str(invalidation.pk), "paths": invalidation.paths}

        return confirmed_action(self, request, queryset, Workflow(
            audit_action="website.invalidate_cdn", permission="console.invalidate_cdn", title="Invalidate CDN cache",
            question="Purge the CDN cache of these websites (the whole site, or only the paths below)?",
            submit_label="Invalidate", done_message="{count} invalidation(s) queued.",
            form_class=InvalidateCacheForm, perform=invalidate,
            describe=lambda website: f"{website} ({website.cdn_backend})",
        ))  # fmt: skip

    @admin.action(description="Roll back to the previous deployment", permissions=["change"])
    def rollback_selected(self, request, queryset):
        def rollback(website, data):
            deployment = services.deployment_rollback(website=website)
            return {"deployment": deployment.number, "serving": deployment.source_deployment.number}

        return confirmed_action(self, request, queryset, Workflow(
            audit_action="website.rollback", permission="tenants.change_website", title="Roll back websites",
            question="Serve the previous deployment of these websites again?",
            submit_label="Yes, roll back", done_message="{count} website(s) rolled back.", perform=rollback,
        ))  # fmt: skip

    @admin.display(description="Hostnames")
    def hostname_list(self, website):
        return ", ".join(h.hostname for h in website.hostnames.all())

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("hostnames")


class InvalidateCacheForm(ReasonForm):
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
        "file_count", "total_bytes", "source_deployment", "attempts", "lease_expires_at",
    ]  # fmt: skip
    exclude = ["manifest", "lease_owner"]

    def has_add_permission(self, request):
        return False
