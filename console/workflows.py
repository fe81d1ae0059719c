"""Operator workflows in the admin: a confirmation step, a server-side permission check, and one audit
log entry per target, written in the same transaction as the action.

An admin action calls `confirmed_action(...)` with what to do to each selected object; the first POST
(the action chosen in the change list) shows the confirmation page with a reason field, the second
(with "apply") performs it. A user without the permission gets 403, whichever page the POST came from.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse

from platform_site.exceptions import ApplicationError

from .models import AuditLogEntry
from .services import audit_record

CONFIRM_FIELD = "apply"


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        widget=forms.TextInput(attrs={"size": 70}),
        help_text="Why: recorded in the audit log with your name and the time.",
    )


@dataclass
class Workflow:
    """What an admin action does, for the confirmation page and the audit log."""

    audit_action: str  # "<entity>.<verb>" in the audit log
    permission: str  # "app_label.codename", checked on every POST
    title: str
    question: str  # shown above the list of objects
    submit_label: str
    done_message: str  # "{count} key(s) revoked."
    perform: Callable  # (obj, cleaned_data) -> dict: detail for the audit log
    form_class: type[forms.Form] = ReasonForm
    danger: bool = False
    describe: Callable = field(default=str)  # an object as the confirmation page lists it


def _error_text(exc: ApplicationError) -> str:
    return "; ".join(message for msgs in exc.fields.values() for message in msgs) or exc.message


def _audit_detail(cleaned_data: dict) -> dict:
    return {key: value for key, value in cleaned_data.items() if key != "reason" and _jsonable(value)}


def _jsonable(value) -> bool:
    return isinstance(value, str | int | float | bool | list | type(None))


def confirmed_action(modeladmin: admin.ModelAdmin, request, queryset, workflow: Workflow):
    if not request.user.has_perm(workflow.permission):
        raise PermissionDenied
    form = workflow.form_class(request.POST if CONFIRM_FIELD in request.POST else None)
    if form.is_bound and form.is_valid():
        done = 0
        for obj in queryset:
            reason = form.cleaned_data["reason"]
            try:
                with transaction.atomic():
                    detail = workflow.perform(obj, form.cleaned_data) or {}
                    audit_record(actor=request.user, action=workflow.audit_action, target=obj, reason=reason,
                                 detail={**_audit_detail(form.cleaned_data), **detail})  # fmt: skip
            except ApplicationError as exc:
                audit_record(actor=request.user, action=workflow.audit_action, target=obj, reason=reason,
                             outcome=AuditLogEntry.Outcome.REFUSED, detail={"error": _error_text(exc)})  # fmt: skip
                modeladmin.message_user(request, f"{obj}: {_error_text(exc)}", messages.WARNING)
            else:
                done += 1
        if done:
            modeladmin.message_user(request, workflow.done_message.format(count=done), messages.SUCCESS)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": workflow.title,
        "workflow": workflow,
        "objects": [(obj.pk, workflow.describe(obj)) for obj in queryset],
        "form": form,
        "action_name": request.POST.get("action", ""),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "confirm_field": CONFIRM_FIELD,
        "opts": modeladmin.model._meta,
    }
    return TemplateResponse(request, "admin/console/confirm_action.html", context)


def confirmed_operation(modeladmin: admin.ModelAdmin, request, workflow: Workflow, *, back_url: str):
    """The same for an operation on no selected object (run a backup now): GET or a plain POST shows the
    confirmation page, a POST with "apply" runs `workflow.perform(None, cleaned_data)` and audits it."""
    if not request.user.has_perm(workflow.permission):
        raise PermissionDenied
    form = workflow.form_class(request.POST if request.method == "POST" and CONFIRM_FIELD in request.POST else None)
    if form.is_bound and form.is_valid():
        reason = form.cleaned_data["reason"]
        try:
            with transaction.atomic():
                detail = workflow.perform(None, form.cleaned_data) or {}
                audit_record(actor=request.user, action=workflow.audit_action, reason=reason,
                             detail={**_audit_detail(form.cleaned_data), **detail})  # fmt: skip
        except ApplicationError as exc:
            audit_record(actor=request.user, action=workflow.audit_action, reason=reason,
                         outcome=AuditLogEntry.Outcome.REFUSED, detail={"error": _error_text(exc)})  # fmt: skip
            modeladmin.message_user(request, _error_text(exc), messages.WARNING)
        else:
            modeladmin.message_user(request, workflow.done_message, messages.SUCCESS)
        return HttpResponseRedirect(back_url)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": workflow.title,
        "workflow": workflow,
        "objects": [],
        "form": form,
        "confirm_field": CONFIRM_FIELD,
        "opts": modeladmin.model._meta,
    }
    return TemplateResponse(request, "admin/console/confirm_action.html", context)


class OperatorAdminMixin:
    """For ModelAdmins with operator actions: `@admin.action(permissions=["revoke_apikey"])` hides an
    action from users without console.revoke_apikey, and a POST naming it anyway gets 403 (Django alone
    would answer "No action selected" with a redirect)."""

    def changelist_view(self, request, extra_context=None):
        # Django skips action handling altogether when the user has no action left, so check here.
        if request.method == "POST":
            name = request.POST.get("action", "")
            declared = {action if isinstance(action, str) else action.__name__ for action in (self.actions or [])}
            if name in declared and name not in self.get_actions(request):
                raise PermissionDenied
        return super().changelist_view(request, extra_context)

    def has_suspend_tenant_permission(self, request):
        return request.user.has_perm("console.suspend_tenant")

    def has_revoke_apikey_permission(self, request):
        return request.user.has_perm("console.revoke_apikey")

    def has_invalidate_cdn_permission(self, request):
        return request.user.has_perm("console.invalidate_cdn")

    def has_redeliver_webhook_permission(self, request):
        return request.user.has_perm("console.redeliver_webhook")

    def has_toggle_endpoint_permission(self, request):
        return request.user.has_perm("console.toggle_endpoint")

    def has_run_backup_permission(self, request):
        return request.user.has_perm("console.run_backup")

    def has_verify_backup_permission(self, request):
        return request.user.has_perm("console.verify_backup")

    def has_restore_tenant_permission(self, request):
        return request.user.has_perm("console.restore_tenant")
