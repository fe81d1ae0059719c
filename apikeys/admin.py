from django import forms
from django.contrib import admin, messages
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from unfold.admin import ModelAdmin
from unfold.decorators import display

from console.display import STATUS_COLOURS, titled
from console.services import error_text
from console.workflows import (
    AuditReasonForm,
    OperatorAdminMixin,
    Workflow,
    admin_operator_action,
    changed_values,
    confirmed_action,
    object_button,
)
from core.exceptions import ApplicationError
from tenants.models import Tenant

from . import selectors, services
from .models import ApiKey, ApiUsageMinute
from .scopes import SCOPES


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("expired", "Expired"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "active":
            return queryset.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now), revoked_at__isnull=True)
        if self.value() == "expired":
            return queryset.filter(expires_at__lte=now, revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


class ApiKeyCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=list(SCOPES.items()), widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiKey
        fields = ["tenant", "name", "scopes", "expires_at", "rate_limit_per_minute"]

    def clean(self):
        data = super().clean()
        if data.get("tenant") is not None:
            _check_limit(self, data["tenant"], data.get("rate_limit_per_minute"))
        return data


class ApiKeyChangeForm(AuditReasonForm):
    class Meta:
        model = ApiKey
        fields = ["name", "rate_limit_per_minute"]

    def clean(self):
        data = super().clean()
        _check_limit(self, self.instance.tenant, data.get("rate_limit_per_minute"))
        return data


def _check_limit(form, tenant, rate_limit_per_minute) -> None:
    try:
        services.apikey_limit_check(tenant=tenant, rate_limit_per_minute=rate_limit_per_minute)
    except ApplicationError as exc:
        form.add_error("rate_limit_per_minute", error_text(exc))


@admin.register(ApiKey)
class ApiKeyAdmin(OperatorAdminMixin, ModelAdmin):
    list_display = [
        "state_badge",
        "name",
        "tenant",
        "display",
        "scope_list",
        "last_used_at",
        "expires_at",
        "created_at",
    ]
    list_display_links = ["name"]
    list_filter = [StateFilter, "environment", "tenant", ("created_at", titled("creation date")),
                   ("last_used_at", titled("last use"))]  # fmt: skip
    search_fields = ["name", "id", "last_four", "tenant__name", "tenant__slug"]
    list_select_related = ["tenant"]
    actions = ["revoke_selected"]
    actions_detail = ["revoke_detail"]
    revoke_detail = object_button("revoke_detail", "revoke_selected", description="Revoke", url_path="revoke",
                                  permission="revoke_apikey", danger=True, icon="block")  # fmt: skip
    form = ApiKeyChangeForm
    readonly_fields = [
        "id",
        "tenant",
        "display",
        "scopes",
        "created_at",
        "created_by",
        "expires_at",
        "revoked_at",
        "revoked_by",
        "revoked_reason",
        "last_used_at",
        "rotated_to",
    ]
    fields = ["name", "rate_limit_per_minute", "audit_reason", *readonly_fields]

    @display(description="State", label=STATUS_COLOURS)
    def state_badge(self, api_key):
        if api_key.revoked_at is not None:
            return "revoked", "Revoked"
        if api_key.expires_at is not None and api_key.expires_at <= timezone.now():
            return "expired", "Expired"
        return "active", "Active"

    @admin.display(description="Key")
    def display(self, api_key):
        return api_key.display

    @admin.display(description="Scopes")
    def scope_list(self, api_key):
        return ", ".join(api_key.scopes)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
            kwargs["fields"] = ApiKeyCreateForm.Meta.fields
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return ApiKeyCreateForm.Meta.fields if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        """Through the services; a new limit reaches the API gateway on the key's next request."""
        data = form.cleaned_data
        try:
            if change:
                fields = changed_values(form, ("name", "rate_limit_per_minute"))
                if fields:
                    with admin_operator_action(request, permissions="apikeys.change_apikey", action="apikey.update",
                                               target=obj, reason=data.get("audit_reason", ""), detail=fields):  # fmt: skip
                        services.apikey_update(api_key=obj, **fields)
                return
            with admin_operator_action(request, permissions="apikeys.add_apikey", action="apikey.create") as audit:
                api_key, raw_key = services.apikey_create(
                    tenant=data["tenant"],
                    name=data["name"],
                    scopes=data["scopes"],
                    expires_at=data.get("expires_at"),
                    rate_limit_per_minute=data.get("rate_limit_per_minute"),
                    created_by=request.user,
                )
                audit.target = api_key
                audit.detail.update({"key": api_key.display, "scopes": api_key.scopes})
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        # The form's instance becomes the saved key (its environment and last four included): the admin's
        # history and messages name it as str(obj), which read "plk__…" from the unsaved form instance.
        for model_field in ApiKey._meta.concrete_fields:
            setattr(obj, model_field.attname, getattr(api_key, model_field.attname))
        obj._state.adding = False
        request._created_api_key = (api_key, raw_key)

    def response_add(self, request, obj, post_url_continue=None):
        """The new key, shown once in this response: never in a redirect's message (the messages cookie is
        signed, not encrypted), never cached."""
        created = getattr(request, "_created_api_key", None)
        if created is None:  # refused by the service: its message says why
            return HttpResponseRedirect(reverse("admin:apikeys_apikey_changelist"))
        api_key, raw_key = created
        context = {**self.admin_site.each_context(request), "title": "API key created", "api_key": api_key,
                   "raw_key": raw_key, "opts": self.model._meta}  # fmt: skip
        response = TemplateResponse(request, "admin/apikeys/apikey/created.html", context)
        add_never_cache_headers(response)
        return response

    @admin.action(description="Revoke selected keys", permissions=["revoke_apikey"])
    def revoke_selected(self, request, queryset):
        def revoke(api_key, data):
            services.apikey_revoke(
                api_key=api_key, revoked_by=f"user:{request.user.get_username()}", reason=data["reason"]
            )
            return {"key": api_key.display, "tenant": str(api_key.tenant_id)}

        return confirmed_action(self, request, queryset.select_related("tenant"), Workflow(
            audit_action="apikey.revoke", permission="console.revoke_apikey", title="Revoke API keys",
            question="Revoke these API keys? Every request with them is refused from the next request on.",
            submit_label="Revoke selected keys", done_message="{count} key(s) revoked.", danger=True, perform=revoke,
            describe=lambda api_key: f"{api_key.name} — {api_key.display} ({api_key.tenant})",
        ))  # fmt: skip


@admin.register(ApiUsageMinute)
class ApiUsageMinuteAdmin(OperatorAdminMixin, ModelAdmin):
    list_display = ["minute", "tenant", "api_key", "requests", "client_errors", "server_errors", "rate_limited"]
    list_filter = ["tenant", ("minute", titled("minute"))]
    list_select_related = ["tenant", "api_key"]
    change_list_template = "admin/apikeys/usage_change_list.html"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_urls(self):
        chart = path("chart/", self.admin_site.admin_view(self.chart_view), name="apikeys_usage_chart")
        return [chart, *super().get_urls()]

    def chart_view(self, request):
        """Requests per hour over the last 24 hours, one bar chart per tenant (server-rendered SVG)."""
        tenants = Tenant.objects.order_by("name")
        if request.GET.get("tenant"):
            tenants = tenants.filter(pk=request.GET["tenant"])
        charts = []
        for tenant in tenants[:50]:
            hours = selectors.usage_last_day_by_hour(tenant=tenant)
            peak = max((hour["requests"] for hour in hours), default=0) or 1
            bars = [
                {**hour, "x": index * 20, "height": round(100 * hour["requests"] / peak)}
                for index, hour in enumerate(hours)
            ]
            charts.append({"tenant": tenant, "bars": bars, "total": sum(h["requests"] for h in hours)})
        context = {**self.admin_site.each_context(request), "title": "API usage, last 24 hours", "charts": charts}
        return TemplateResponse(request, "admin/apikeys/usage_chart.html", context)
