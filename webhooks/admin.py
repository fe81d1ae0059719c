from django.contrib import admin, messages

from platform_site.exceptions import ApplicationError

from . import services
from .models import Attempt, Delivery, Endpoint, Event


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    list_display = ["url", "tenant", "is_active", "disabled_reason", "failing_since", "created_at"]
    list_filter = ["is_active", "created_at", "tenant__tier"]
    search_fields = ["url", "tenant__name", "tenant__slug", "id"]
    list_select_related = ["tenant"]
    # Secrets never appear in the admin, not even encrypted.
    exclude = ["secret_encrypted", "previous_secret_encrypted"]
    # The URL changes only through the API, which runs the SSRF guard.
    readonly_fields = ["id", "tenant", "url", "is_active", "disabled_reason", "disabled_at", "failing_since",
                       "previous_secret_expires_at", "created_at", "updated_at"]  # fmt: skip
    actions = ["disable_selected", "enable_selected"]

    def has_add_permission(self, request):
        return False  # created through the API, which returns the secret once

    @admin.action(description="Disable selected endpoints")
    def disable_selected(self, request, queryset):
        for endpoint in queryset:
            services.endpoint_disable(
                endpoint=endpoint, reason=f"disabled by {request.user} in the admin", notify=False
            )
        self.message_user(request, f"{queryset.count()} endpoint(s) disabled.", messages.SUCCESS)

    @admin.action(description="Enable selected endpoints")
    def enable_selected(self, request, queryset):
        for endpoint in queryset:
            services.endpoint_enable(endpoint=endpoint)
        self.message_user(request, f"{queryset.count()} endpoint(s) enabled.", messages.SUCCESS)


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = ["number", "started_at", "duration_ms", "status_code", "succeeded", "error", "response_excerpt", "manual"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["__str__", "event_type", "endpoint", "status", "attempt_count", "next_attempt_at", "created_at"]
    list_filter = ["status", "event__type", "created_at", "endpoint__is_active"]
    search_fields = ["id", "endpoint__url", "event__id", "endpoint__tenant__slug"]
    list_select_related = ["event", "endpoint"]
    readonly_fields = ["id", "event", "endpoint", "status", "attempt_count", "next_attempt_at", "queued_until",
                       "last_attempt_at", "created_at", "finished_at"]  # fmt: skip
    inlines = [AttemptInline]
    actions = ["redeliver_selected"]

    @admin.display(description="Event type", ordering="event__type")
    def event_type(self, delivery):
        return delivery.event.type

    def has_add_permission(self, request):
        return False

    @admin.action(description="Redeliver selected deliveries")
    def redeliver_selected(self, request, queryset):
        for delivery in queryset:
            try:
                services.delivery_redeliver(delivery=delivery)
            except ApplicationError as exc:
                self.message_user(request, f"{delivery}: {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"{delivery} queued.", messages.SUCCESS)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["type", "tenant", "version", "created_at", "fanned_out_at"]
    list_filter = ["type", "created_at"]
    search_fields = ["id", "tenant__slug"]
    list_select_related = ["tenant"]
    readonly_fields = ["id", "tenant", "type", "version", "data", "target_endpoint", "created_at", "fanned_out_at"]

    def has_add_permission(self, request):
        return False
