"""The operator console's pages for the tenants app: tenants (tier, limits, suspension), websites with
their hostnames, deployments, and the plans. Every write goes through the services, audited.

Longer than ~400 lines on purpose: Django finds an app's admin in its admin.py, and each class here is a
thin layer of form fields and buttons over one service; what they share (the audited-action helpers,
the role checks) lives in console/ already.
"""

from django import forms
from django.contrib import admin, messages
from unfold.admin import ModelAdmin, TabularInline
from unfold.widgets import UnfoldAdminTextInputWidget

from console import workflows
from console.display import status_badge, titled
from console.roles import operator_may
from core.exceptions import ApplicationError

from . import deployments, plans, services, verification
from .models import Deployment, Hostname, Tenant, UsagePlan, Website

LIMIT_FIELDS = ("tier", "rate_limit_override", "burst_override", "monthly_quota_override")


def _done(tenant: Tenant) -> dict:
    return {"status": tenant.status}


class TenantForm(workflows.AuditReasonForm):
    class Meta:
        model = Tenant
        fields = ["name", "slug", "tier", "rate_limit_override", "burst_override", "monthly_quota_override"]

    def clean(self):
        data = super().clean()
        if self.instance.pk and set(LIMIT_FIELDS) & set(self.changed_data) and not data.get("audit_reason"):
            self.add_error("audit_reason", "Say why the tenant's tier or limit changes: it goes to the audit log.")
        return data


class UsagePlanForm(workflows.AuditReasonForm):
    class Meta:
        model = UsagePlan
        fields = ["burst_per_second", "requests_per_minute", "monthly_quota"]

    def clean(self):
        data = super().clean()
        if self.changed_data and not data.get("audit_reason"):
            self.add_error("audit_reason", "Say why the plan changes: it goes to the audit log.")
        return data


@admin.register(UsagePlan)
class UsagePlanAdmin(workflows.OperatorAdminMixin, ModelAdmin):
    """A tier's usage plan (docs/api-limits.md): editing needs console.change_tier, is audited, and reaches
    every tenant of the tier on its next request (through tenants.plans.usage_plan_update)."""

    form = UsagePlanForm
    list_display = ["tier", "burst_per_second", "requests_per_minute", "monthly_quota", "updated_at"]
    fields = ["tier", "burst_per_second", "requests_per_minute", "monthly_quota", "audit_reason", "updated_at"]
    readonly_fields = ["tier", "updated_at"]

    def has_add_permission(self, request):
        return False  # one plan per tier, created by the migration

    def get_readonly_fields(self, request, obj=None):
        if not operator_may(request.user, "console.change_tier"):
            return [*self.readonly_fields, *UsagePlanForm.Meta.fields]
        return self.readonly_fields

    def save_changes(self, request, plan, form, *, created: bool) -> None:
        data = form.cleaned_data
        values = {field: data.get(field) for field in UsagePlanForm.Meta.fields}
        detail = {field: {"from": form.initial.get(field), "to": values[field]} for field in form.changed_data
                  if field in values}  # fmt: skip
        with workflows.admin_operator_action(request, permissions=("tenants.change_usageplan", "console.change_tier"),
                                             action="usage_plan.update", target=plan,
                                             reason=data.get("audit_reason", ""), detail=detail):  # fmt: skip
            plans.usage_plan_update(tier=plan.tier, **values)


@admin.register(Tenant)
class TenantAdmin(workflows.OperatorAdminMixin, ModelAdmin):
    form = TenantForm
    list_display = ["status_badge", "name", "slug", "tier", "requests_per_minute", "website_count", "created_at"]
    list_display_links = ["name"]
    list_filter = ["status", "tier", ("created_at", titled("creation date"))]
    status_badge = status_badge()
    search_fields = ["name", "slug", "id"]
    fields = ["name", "slug", "tier", "rate_limit_override", "burst_override", "monthly_quota_override",
              "audit_reason", "id", "status", "suspended_at", "suspension_reason", "api_quota", "created_at",
              "updated_at"]  # fmt: skip
    readonly_fields = ["id", "status", "suspended_at", "suspension_reason", "api_quota", "created_at", "updated_at"]
    prepopulated_fields = {"slug": ["name"]}
    actions = ["suspend_selected", "reactivate_selected", "delete_through_service"]
    actions_detail = ["suspend_detail", "reactivate_detail"]
    create_audit_action = "tenant.create"
    delete_audit_action = "tenant.delete"
    suspend_detail = workflows.object_button("suspend_detail", "suspend_selected", description="Suspend",
                                             url_path="suspend", permission="suspend_tenant", danger=True,
                                             icon="block")  # fmt: skip
    reactivate_detail = workflows.object_button("reactivate_detail", "reactivate_selected", description="Reactivate",
                                                url_path="reactivate", permission="suspend_tenant",
                                                icon="play_circle")  # fmt: skip

    @admin.display(description="Websites")
    def website_count(self, tenant):
        return tenant.websites.count()

    @admin.display(description="API requests/min")
    def requests_per_minute(self, tenant):
        return tenant.requests_per_minute

    @admin.display(description="API quota this month")
    def api_quota(self, tenant):
        """Units used of the monthly quota and the alerts sent (docs/console.md)."""
        from apikeys.selectors import quota_summary

        if tenant.pk is None:
            return "-"
        usage = quota_summary(tenant=tenant)
        if usage["quota"] is None:
            return f"{usage['used']:,} units in {usage['month']} (no quota)"
        alerts = [f"{name} sent {usage[f'{name}_sent_at']:%Y-%m-%d %H:%M} UTC" for name in ("warning", "exceeded")
                  if usage[f"{name}_sent_at"]]  # fmt: skip
        return f"{usage['used']:,} of {usage['quota']:,} units in {usage['month']} ({usage['remaining']:,} left)" + (
            f"; {', '.join(alerts)}" if alerts else ""
        )

    def get_readonly_fields(self, request, obj=None):
        readonly = list(self.readonly_fields)
        if obj is not None:
            readonly.append("slug")  # ids and hostnames are derived from it; no service renames it
        if not operator_may(request.user, "console.change_tier"):
            readonly += LIMIT_FIELDS
        return readonly

    def get_prepopulated_fields(self, request, obj=None):
        return {} if obj is not None else self.prepopulated_fields

    def perform_create(self, data):
        return services.tenant_create(name=data["name"], slug=data["slug"], tier=data.get("tier", "free"))

    def save_changes(self, request, tenant, form, *, created: bool) -> None:
        """Through the services: a tier or limit change reaches the API gateway on the next request."""
        data = form.cleaned_data
        reason = data.get("audit_reason", "")
        limits = workflows.changed_values(form, LIMIT_FIELDS)
        if created:
            limits.pop("tier", None)  # tenant_create has set it
        elif "name" in form.changed_data:
            with workflows.admin_operator_action(request, permissions="tenants.change_tenant",
                                                 action="tenant.update", target=tenant, reason=reason,
                                                 detail={"name": data["name"]}):  # fmt: skip
                services.tenant_update(tenant=tenant, name=data["name"])
        if limits:
            self._change_limits(request, tenant, form, limits, reason)

    def _change_limits(self, request, tenant, form, limits: dict, reason: str) -> None:
        detail = {field: {"from": form.initial.get(field), "to": value} for field, value in limits.items()}
        with workflows.admin_operator_action(request, permissions=("tenants.change_tenant", "console.change_tier"),
                                             action="tenant.change_tier", target=tenant, reason=reason,
                                             detail=detail):  # fmt: skip
            if "tier" in limits:
                services.tenant_update(tenant=tenant, tier=limits["tier"])
            if "rate_limit_override" in limits:
                services.tenant_limit_override(tenant=tenant, requests_per_minute=limits["rate_limit_override"])
            overrides = {name: limits[field] for field, name in plans.PLAN_OVERRIDES.items() if field in limits}
            if overrides:
                plans.tenant_plan_override(tenant=tenant, **overrides)

    def perform_delete(self, tenant, data):
        services.tenant_delete(tenant=tenant)
        return {"slug": tenant.slug}

    @admin.action(description="Suspend selected tenants (API access stops at once)", permissions=["suspend_tenant"])
    def suspend_selected(self, request, queryset):
        return workflows.confirmed_action(self, request, queryset, workflows.Workflow(
            audit_action="tenant.suspend", permission="console.suspend_tenant", title="Suspend tenants",
            question="Suspend these tenants? Their API keys are refused from the next request on.",
            submit_label="Yes, suspend", done_message="{count} tenant(s) suspended.", danger=True,
            perform=lambda tenant, data: _done(services.tenant_suspend(tenant=tenant, reason=data["reason"])),
        ))  # fmt: skip

    @admin.action(description="Reactivate selected tenants", permissions=["suspend_tenant"])
    def reactivate_selected(self, request, queryset):
        return workflows.confirmed_action(self, request, queryset, workflows.Workflow(
            audit_action="tenant.reactivate", permission="console.suspend_tenant", title="Reactivate tenants",
            question="Reactivate these tenants? Their API keys work again from the next request on.",
            submit_label="Yes, reactivate", done_message="{count} tenant(s) reactivated.",
            perform=lambda tenant, data: _done(services.tenant_reactivate(tenant=tenant)),
        ))  # fmt: skip


class HostnameForm(forms.ModelForm):
    """The service's rules for a new hostname (tenants/services.py `_set_hostnames`): a valid name, not
    the platform's, not verified by another website."""

    class Meta:
        model = Hostname
        fields = ["hostname"]
        # A row of the website's hostnames has no label of its own: screen readers get the column's name.
        widgets = {"hostname": UnfoldAdminTextInputWidget(attrs={"aria-label": "Hostname"})}

    def clean_hostname(self) -> str:
        from django.core.exceptions import ValidationError

        from .hostnames import check_claimable, normalize_hostname
        from .selectors import hostnames_verified_elsewhere

        try:
            hostname = normalize_hostname(self.cleaned_data["hostname"])
            check_claimable(hostname)
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from exc
        if self.instance.pk and hostname != self.instance.hostname:
            # Its verification proved control of the old name only.
            raise forms.ValidationError("A hostname cannot be renamed: delete it and add the new name.")
        if hostnames_verified_elsewhere(hostnames=[hostname], website_id=self.instance.website_id):
            raise forms.ValidationError(f"{hostname!r} is already in use on the platform.")
        return hostname


class HostnameInline(TabularInline):
    """A website's hostnames: saved as one list by website_update (WebsiteAdmin.save_related), so adding,
    changing and removing them is changing the website."""

    model = Hostname
    form = HostnameForm
    extra = 1
    fields = ["hostname", "status", "challenge_record", "verified_at", "checked_at", "last_error"]
    readonly_fields = ["status", "challenge_record", "verified_at", "checked_at", "last_error"]
    show_change_link = True

    @admin.display(description="DNS record to publish")
    def challenge_record(self, hostname):
        return f"{hostname.challenge_name} TXT {hostname.verification_token}" if hostname.pk else "—"

    def has_add_permission(self, request, obj=None):
        return operator_may(request.user, "tenants.change_website")

    def has_change_permission(self, request, obj=None):
        return operator_may(request.user, "tenants.change_website")

    def has_delete_permission(self, request, obj=None):
        return operator_may(request.user, "tenants.change_website")


def _checked(hostname: Hostname) -> dict:
    checked = verification.hostname_verify(hostname=hostname, requested=True)
    if checked is None:
        return {"status": "removed"}
    return {"status": checked.status, "error": checked.last_error}


@admin.register(Hostname)
class HostnameAdmin(ModelAdmin):
    """Custom hostnames and their DNS verification; "Check DNS now" looks the records up at once."""

    list_display = ["status_badge", "hostname", "website", "verified_at", "checked_at", "last_error"]
    list_display_links = ["hostname"]
    list_filter = ["status"]
    status_badge = status_badge()
    search_fields = ["hostname", "website__name", "website__tenant__slug"]
    list_select_related = ["website"]
    fields = ["hostname", "website", "status", "challenge_record", "created_at", "verified_at",
              "verification_started_at", "checked_at", "next_check_at", "check_failures", "record_missing_since",
              "last_error"]  # fmt: skip
    readonly_fields = fields
    actions = ["check_now"]

    @admin.display(description="DNS record to publish")
    def challenge_record(self, hostname):
        return f"{hostname.challenge_name} TXT {hostname.verification_token}"

    def has_add_permission(self, request):
        return False  # hostnames are added on their website

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # removed on their website, through website_update (which purges the CDN)

    @admin.action(description="Check DNS verification now", permissions=["view"])
    def check_now(self, request, queryset):
        return workflows.confirmed_action(self, request, queryset, workflows.Workflow(
            audit_action="hostname.verify", permission="tenants.view_hostname", title="Check hostnames now",
            question="Look these hostnames' _platform-challenge TXT records up now? A pending or failed hostname "
                     "found verified is served at once; one still missing is checked again with backoff.",
            submit_label="Check now", done_message="{count} hostname(s) checked.", perform=lambda h, data: _checked(h),
        ))  # fmt: skip


class DeploymentInline(TabularInline):
    model = Deployment
    extra = 0
    fields = ["number", "status", "trigger", "created_at", "finished_at"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True
    ordering = ["-number"]

    def has_add_permission(self, request, obj=None):
        return False


CDN_FIELDS = ("cdn_backend", "cdn_config", "cache_overrides")


class WebsiteForm(workflows.AuditReasonForm):
    class Meta:
        model = Website
        fields = ["tenant", "name", "status", *CDN_FIELDS]
        labels = {"cdn_backend": "CDN backend", "cdn_config": "CDN configuration"}


@admin.register(Website)
class WebsiteAdmin(workflows.OperatorAdminMixin, ModelAdmin):
    form = WebsiteForm
    list_display = ["status_badge", "name", "tenant", "hostname_list", "active_deployment", "updated_at"]
    list_display_links = ["name"]
    list_filter = ["status", ("tenant__tier", titled("tenant's tier")), ("created_at", titled("creation date"))]
    status_badge = status_badge()
    search_fields = ["name", "hostnames__hostname", "tenant__name", "tenant__slug", "id"]
    list_select_related = ["tenant", "active_deployment"]
    autocomplete_fields = ["tenant"]
    fields = ["tenant", "name", "status", *CDN_FIELDS, "audit_reason", "id", "active_deployment", "created_at",
              "updated_at"]  # fmt: skip
    readonly_fields = ["id", "active_deployment", "created_at", "updated_at"]
    inlines = [HostnameInline, DeploymentInline]
    actions = ["invalidate_cdn_cache", "rollback_selected", "delete_through_service"]
    actions_detail = ["rollback_detail", "invalidate_detail"]
    create_audit_action = "website.create"
    delete_audit_action = "website.delete"
    rollback_detail = workflows.object_button("rollback_detail", "rollback_selected", description="Roll back",
                                              url_path="rollback", permission="change", icon="undo")  # fmt: skip
    invalidate_detail = workflows.object_button("invalidate_detail", "invalidate_cdn_cache",
                                                description="Invalidate CDN cache", url_path="invalidate",
                                                permission="invalidate_cdn", icon="cached")  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        readonly = list(self.readonly_fields)
        if obj is not None:
            readonly.append("tenant")  # a website never moves to another tenant
        if not operator_may(request.user, "console.configure_cdn"):
            readonly += CDN_FIELDS  # a provider id names infrastructure another tenant's cache may sit on
        return readonly

    def perform_create(self, data):
        return services.website_create(tenant=data["tenant"], name=data["name"])

    def save_changes(self, request, website, form, *, created: bool) -> None:
        """Through the services: name, status, CDN settings (hostnames: save_related)."""
        from cdn.services import website_cdn_update

        reason = form.cleaned_data.get("audit_reason", "")
        fields = workflows.changed_values(form, ("name", "status"))
        if fields and not created:
            with workflows.admin_operator_action(request, permissions="tenants.change_website",
                                                 action="website.update", target=website, reason=reason,
                                                 detail=fields):  # fmt: skip
                services.website_update(website=website, **fields)
        cdn = workflows.changed_values(form, CDN_FIELDS)
        if cdn:
            with workflows.admin_operator_action(request,
                                                 permissions=("tenants.change_website", "console.configure_cdn"),
                                                 action="website.configure_cdn", target=website, reason=reason,
                                                 detail=cdn):  # fmt: skip
                website_cdn_update(website=website, **cdn)

    def save_related(self, request, form, formsets, change):
        """Hostnames through website_update (its checks and the website.updated event); deployments are
        read-only here."""
        for formset in formsets:
            # What the admin's change message reads from a saved formset; nothing is saved row by row here.
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            if formset.model is not Hostname or not formset.has_changed():
                continue
            hostnames = [
                inline.instance.hostname  # normalised by Hostname.clean during validation
                for inline in formset.forms
                if inline.cleaned_data and not inline.cleaned_data.get("DELETE") and inline.instance.hostname
            ]
            try:
                with workflows.admin_operator_action(request, permissions="tenants.change_website",
                                                     action="website.update", target=form.instance,
                                                     reason=form.cleaned_data.get("audit_reason", ""),
                                                     detail={"hostnames": hostnames}):  # fmt: skip
                    services.website_update(website=form.instance, hostnames=hostnames)
            except ApplicationError as exc:
                self.message_user(request, f"Hostnames not saved: {exc.message}", messages.ERROR)

    def perform_delete(self, website, data):
        services.website_delete(website=website)
        return {"tenant": str(website.tenant_id), "name": website.name}

    @admin.action(description="Invalidate CDN cache", permissions=["invalidate_cdn"])
    def invalidate_cdn_cache(self, request, queryset):
        """Whole site, or the paths typed in the form (one per line)."""
        from cdn.services import invalidation_request

        def invalidate(website, data):
            invalidation = invalidation_request(website=website, paths=data["paths"], reason=data["reason"])
            return {"invalidation": str(invalidation.pk), "paths": invalidation.paths}

        return workflows.confirmed_action(self, request, queryset, workflows.Workflow(
            audit_action="website.invalidate_cdn", permission="console.invalidate_cdn", title="Invalidate CDN cache",
            question="Purge the CDN cache of these websites (the whole site, or only the paths below)?",
            submit_label="Invalidate", done_message="{count} invalidation(s) queued.",
            form_class=InvalidateCacheForm, perform=invalidate,
            describe=lambda website: f"{website} ({website.cdn_backend})",
        ))  # fmt: skip

    @admin.action(description="Roll back to the previous deployment", permissions=["change"])
    def rollback_selected(self, request, queryset):
        def rollback(website, data):
            deployment = deployments.deployment_rollback(website=website)
            return {"deployment": deployment.number, "serving": deployment.source_deployment.number}

        queryset = queryset.select_related("active_deployment")
        return workflows.confirmed_action(self, request, queryset, workflows.Workflow(
            audit_action="website.rollback", permission="tenants.change_website", title="Roll back websites",
            question="Serve the previous deployment of these websites again?",
            consequence="The rollback is a new deployment that serves the earlier one's files; the CDN is purged "
                        "of what differs. Deploying again or rolling back once more undoes it.",
            submit_label="Yes, roll back", done_message="{count} website(s) rolled back.", perform=rollback,
            describe=_describe_rollback,
        ))  # fmt: skip

    @admin.display(description="Hostnames")
    def hostname_list(self, website):
        return ", ".join(h.hostname for h in website.hostnames.all())

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("hostnames")


def _describe_rollback(website: Website) -> str:
    from .selectors import deployment_rollback_target

    active, target = website.active_deployment, deployment_rollback_target(website=website)
    if active is None or target is None:
        return f"{website}: nothing to roll back to (no earlier successful deployment)"
    when = target.finished_at or target.created_at
    return (f"{website}: now serving deployment #{active.number}; will serve deployment #{target.number} again "
            f"(deployed {when:%Y-%m-%d %H:%M} UTC{', ' + target.description if target.description else ''})")  # fmt: skip


class InvalidateCacheForm(workflows.ReasonForm):
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
class DeploymentAdmin(workflows.OperatorAdminMixin, ModelAdmin):
    view_only = True  # deployments change through deploys and rollbacks
    list_display = ["status_badge", "__str__", "trigger", "created_at", "started_at", "finished_at"]
    list_display_links = ["__str__"]
    list_filter = ["status", "trigger", ("created_at", titled("creation date"))]
    status_badge = status_badge()
    search_fields = ["website__name", "website__tenant__name", "id"]
    list_select_related = ["website", "website__tenant"]
    readonly_fields = [
        "id", "website", "number", "status", "trigger", "description", "error",
        "created_at", "started_at", "finished_at", "bundle_key", "bundle_size", "storage_prefix",
        "file_count", "total_bytes", "source_deployment", "attempts", "lease_owner", "lease_expires_at",
    ]  # fmt: skip
    exclude = ["manifest"]

    def has_add_permission(self, request):
        return False
