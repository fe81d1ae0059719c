from datetime import timedelta

from django import forms
from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import display

from console import workflows
from console.display import STATUS_COLOURS, ActiveFilter, status_badge, titled

from . import services
from .models import Attempt, Delivery, Endpoint, Event


class EndpointForm(workflows.AuditReasonForm):
    class Meta:
        model = Endpoint
        fields = ["description", "event_types"]


@admin.register(Endpoint)
class EndpointAdmin(workflows.OperatorAdminMixin, ModelAdmin):
    form = EndpointForm
    list_display = ["state_badge", "url", "tenant", "breaker", "lane", "signature_scheme", "failing_since"]
    list_display_links = ["url"]
    list_filter = [ActiveFilter, ("breaker_state", titled("circuit breaker")), "lane",
                   ("signature_scheme", titled("signature scheme")), ("tenant__tier", titled("tenant's tier")),
                   ("created_at", titled("creation date"))]  # fmt: skip
    search_fields = ["url", "tenant__name", "tenant__slug", "id"]
    list_select_related = ["tenant"]
    # Secrets never appear in the admin, not even encrypted.
    exclude = ["secret_encrypted", "previous_secret_encrypted"]
    # The URL changes only through the API, which runs the SSRF guard.
    # The signature scheme and v1a public keys are shown, never changed here (rotation is the API's).
    readonly_fields = ["id", "tenant", "url", "is_active", "disabled_reason", "disabled_at", "failing_since",
                       "consecutive_failures", "lane", "breaker_state", "breaker_opened_at", "breaker_probe_at",
                       "signature_scheme", "public_key", "previous_public_key", "previous_secret_expires_at",
                       "created_at", "updated_at"]  # fmt: skip
    actions = ["disable_selected", "enable_selected", "reset_breaker", "replay_failed", "delete_through_service"]
    actions_detail = ["replay_detail", "disable_detail", "enable_detail"]
    delete_audit_action = "endpoint.delete"
    replay_detail = workflows.object_button("replay_detail", "replay_failed", description="Replay failed deliveries",
                                            url_path="replay", permission="redeliver_webhook",
                                            icon="replay")  # fmt: skip
    disable_detail = workflows.object_button("disable_detail", "disable_selected", description="Disable",
                                             url_path="disable", permission="toggle_endpoint", danger=True,
                                             icon="block")  # fmt: skip
    enable_detail = workflows.object_button("enable_detail", "enable_selected", description="Enable", url_path="enable",
                                            permission="toggle_endpoint", icon="play_circle")  # fmt: skip

    @display(description="State", ordering="is_active", label=STATUS_COLOURS)
    def state_badge(self, endpoint):
        return ("active", "Active") if endpoint.is_active else ("disabled", "Disabled")

    def has_add_permission(self, request):
        return False  # created through the API, which returns the secret once

    @admin.display(description="Breaker", ordering="breaker_state")
    def breaker(self, endpoint):
        """A badge: closed (with the failures in a row), open (until its next probe) or half-open."""
        if endpoint.breaker_state == Endpoint.BreakerState.CLOSED:
            failures = endpoint.consecutive_failures
            return format_html(
                '<span class="breaker breaker-closed">closed{}</span>', f" ({failures} failed)" if failures else ""
            )
        label = endpoint.get_breaker_state_display().lower()
        probe = f" — probe {endpoint.breaker_probe_at:%Y-%m-%d %H:%M:%S}" if endpoint.breaker_probe_at else ""
        return format_html('<strong class="breaker breaker-{}">{}{}</strong>', endpoint.breaker_state, label, probe)

    def save_changes(self, request, endpoint, form, *, created: bool) -> None:
        """Through endpoint_update (its checks of the event types), audited."""
        fields = workflows.changed_values(form, ("description", "event_types"))
        if fields:
            with workflows.admin_operator_action(request, permissions="webhooks.change_endpoint",
                                                 action="endpoint.update", target=endpoint,
                                                 reason=form.cleaned_data.get("audit_reason", ""),
                                                 detail=fields):  # fmt: skip
                services.endpoint_update(endpoint=endpoint, **fields)

    def perform_delete(self, endpoint, data):
        services.endpoint_delete(endpoint=endpoint)
        return {"url": endpoint.url, "tenant": str(endpoint.tenant_id)}

    def _confirm_on_endpoints(self, request, queryset, **workflow):
        """The confirmation step of an action on endpoints, which lists each by URL and tenant."""
        return workflows.confirmed_action(self, request, queryset,
                                          workflows.Workflow(describe=_describe_endpoint, **workflow))  # fmt: skip

    @admin.action(description="Disable selected endpoints", permissions=["toggle_endpoint"])
    def disable_selected(self, request, queryset):
        def disable(endpoint, data):
            endpoint = services.endpoint_disable(endpoint=endpoint, reason=data["reason"], notify=False)
            return {"is_active": endpoint.is_active}

        return self._confirm_on_endpoints(
            request, queryset, audit_action="endpoint.disable", permission="console.toggle_endpoint",
            title="Disable webhook endpoints",
            question="Disable these endpoints? No delivery is attempted to them until they are enabled again.",
            submit_label="Yes, disable", done_message="{count} endpoint(s) disabled.", danger=True, perform=disable,
        )  # fmt: skip

    @admin.action(description="Enable selected endpoints", permissions=["toggle_endpoint"])
    def enable_selected(self, request, queryset):
        def enable(endpoint, data):
            return {"is_active": services.endpoint_enable(endpoint=endpoint).is_active}

        return self._confirm_on_endpoints(
            request, queryset, audit_action="endpoint.enable", permission="console.toggle_endpoint",
            title="Enable webhook endpoints", question="Enable these endpoints? Deliveries to them are attempted again.",
            submit_label="Yes, enable", done_message="{count} endpoint(s) enabled.", perform=enable,
        )  # fmt: skip

    @admin.action(description="Close the circuit breaker of selected endpoints", permissions=["toggle_endpoint"])
    def reset_breaker(self, request, queryset):
        def reset(endpoint, data):
            endpoint = services.endpoint_breaker_reset(endpoint=endpoint)
            return {"breaker_state": endpoint.breaker_state, "lane": endpoint.lane}

        return self._confirm_on_endpoints(
            request, queryset, audit_action="endpoint.breaker_reset", permission="console.toggle_endpoint",
            title="Close webhook circuit breakers",
            question="Close the breakers of these endpoints? Their waiting deliveries are sent at once, in the fast lane.",
            submit_label="Yes, close", done_message="{count} breaker(s) closed.", perform=reset,
        )  # fmt: skip

    @admin.action(description="Replay failed deliveries of selected endpoints", permissions=["redeliver_webhook"])
    def replay_failed(self, request, queryset):
        def replay(endpoint, data):
            since = data["since"]
            return {"replayed": services.deliveries_replay_failed(endpoint=endpoint, since=since),
                    "since": since.isoformat()}  # fmt: skip

        return self._confirm_on_endpoints(
            request, queryset, audit_action="endpoint.replay_failed", permission="console.redeliver_webhook",
            title="Replay failed webhook deliveries",
            question="Send every failed delivery of these endpoints created since the time below once more?",
            submit_label="Replay", done_message="Failed deliveries of {count} endpoint(s) queued again.",
            form_class=ReplayForm, perform=replay,
        )  # fmt: skip


def _describe_endpoint(endpoint) -> str:
    return f"{endpoint.url} ({endpoint.tenant}){'' if endpoint.is_active else ' — disabled'}"


class ReplayForm(workflows.ReasonForm):
    since = forms.DateTimeField(
        initial=lambda: (timezone.now() - timedelta(days=1)).replace(microsecond=0),
        help_text="UTC, e.g. 2026-01-31 14:00. Failed deliveries created since then are sent again.",
    )


class AttemptInline(TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = ["number", "started_at", "duration_ms", "status_code", "succeeded", "error", "excerpt", "manual"]
    readonly_fields = fields

    @admin.display(description="Response excerpt")
    def excerpt(self, attempt):
        # A receiver's body may be one unbroken 1 KB line: cut it so the page keeps its width.
        text = attempt.response_excerpt
        return text if len(text) <= 120 else f"{text[:120]}… ({len(text)} characters)"

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(workflows.OperatorAdminMixin, ModelAdmin):
    view_only = True  # deliveries change through redelivery and replay
    list_display = [
        "status_badge",
        "__str__",
        "event_type",
        "endpoint",
        "attempt_count",
        "next_attempt_at",
        "created_at",
    ]
    list_display_links = ["__str__"]
    list_filter = ["status", ("event__type", titled("event type")), ("created_at", titled("creation date")),
                   ("endpoint__is_active", titled("endpoint active"))]  # fmt: skip
    status_badge = status_badge()
    search_fields = ["id", "endpoint__url", "event__id", "endpoint__tenant__slug"]
    list_select_related = ["event", "endpoint"]
    readonly_fields = ["id", "event", "endpoint", "status", "attempt_count", "next_attempt_at", "queued_until",
                       "last_attempt_at", "created_at", "finished_at"]  # fmt: skip
    inlines = [AttemptInline]
    actions = ["redeliver_selected"]
    actions_detail = ["redeliver_detail"]
    redeliver_detail = workflows.object_button("redeliver_detail", "redeliver_selected", description="Redeliver",
                                               url_path="redeliver", permission="redeliver_webhook",
                                               icon="send")  # fmt: skip

    @admin.display(description="Event type", ordering="event__type")
    def event_type(self, delivery):
        return delivery.event.type

    def has_add_permission(self, request):
        return False

    @admin.action(description="Redeliver selected deliveries", permissions=["redeliver_webhook"])
    def redeliver_selected(self, request, queryset):
        def redeliver(delivery, data):
            delivery = services.delivery_redeliver(delivery=delivery)
            return {"endpoint": str(delivery.endpoint_id), "attempts_before": delivery.attempt_count}

        queryset = queryset.select_related("event", "endpoint")
        return workflows.confirmed_action(self, request, queryset, workflows.Workflow(
            audit_action="delivery.redeliver", permission="console.redeliver_webhook",
            title="Redeliver webhook deliveries",
            question="Send these deliveries once more now (same webhook-id, so receivers can de-duplicate)?",
            submit_label="Redeliver", done_message="{count} delivery(ies) queued.", perform=redeliver,
            describe=lambda delivery: f"{delivery} — {delivery.event.type} to {delivery.endpoint.url} ({delivery.status})",
        ))  # fmt: skip


@admin.register(Event)
class EventAdmin(workflows.OperatorAdminMixin, ModelAdmin):
    view_only = True
    list_display = ["type", "tenant", "version", "created_at", "fanned_out_at"]
    list_filter = [("type", titled("event type")), ("created_at", titled("creation date"))]
    search_fields = ["id", "tenant__slug"]
    list_select_related = ["tenant"]
    readonly_fields = ["id", "tenant", "type", "version", "data", "target_endpoint", "created_at", "fanned_out_at"]

    def has_add_permission(self, request):
        return False
