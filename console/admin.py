from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, User
from unfold.admin import ModelAdmin
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from .display import status_badge, titled
from .models import AuditLogEntry
from .workflows import OperatorAdminMixin


@admin.register(AuditLogEntry)
class AuditLogEntryAdmin(OperatorAdminMixin, ModelAdmin):
    list_display = ["outcome_badge", "created_at", "actor_username", "source", "action", "target_repr", "reason"]
    list_display_links = ["created_at"]
    list_filter = ["outcome", "action", "source", ("created_at", titled("date"))]
    outcome_badge = status_badge("outcome", description="Outcome")
    search_fields = ["actor_username", "action", "target_id", "target_repr", "reason"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "created_at", "actor", "actor_username", "source", "action", "target_type", "target_id", "target_repr", "reason",
        "outcome", "detail",
    ]  # fmt: skip

    # Append-only: entries are written by the workflows, never by hand, changed or deleted.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# Operator accounts in the console's theme: Django's own UserAdmin and GroupAdmin (their forms, password
# handling and permissions), with unfold's widgets, whose date and time inputs carry labels.
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class OperatorUserAdmin(BaseUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm


@admin.register(Group)
class OperatorGroupAdmin(BaseGroupAdmin, ModelAdmin):
    pass
