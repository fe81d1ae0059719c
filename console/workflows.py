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
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse

from core.exceptions import ApplicationError

from .roles import operator_may
from .services import error_text, operator_action

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
    consequence: str = ""  # what happens, said once more above the buttons


def _audit_detail(cleaned_data: dict) -> dict:
    return {key: value for key, value in cleaned_data.items() if key != "reason" and _jsonable(value)}


def _jsonable(value) -> bool:
    return isinstance(value, str | int | float | bool | list | type(None))


def confirmed_action(modeladmin: admin.ModelAdmin, request, queryset, workflow: Workflow):
    if not operator_may(request.user, workflow.permission):
        raise PermissionDenied
    form = workflow.form_class(request.POST if CONFIRM_FIELD in request.POST else None)
    if form.is_bound and form.is_valid():
        done = 0
        for obj in queryset:
            try:
                with operator_action(
                    actor=request.user, permissions=workflow.permission, action=workflow.audit_action, target=obj,
                    reason=form.cleaned_data["reason"], detail=_audit_detail(form.cleaned_data),
                ) as audit:  # fmt: skip
                    audit.detail.update(workflow.perform(obj, form.cleaned_data) or {})
            except ApplicationError as exc:
                modeladmin.message_user(request, f"{obj}: {error_text(exc)}", messages.WARNING)
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
    if not operator_may(request.user, workflow.permission):
        raise PermissionDenied
    form = workflow.form_class(request.POST if request.method == "POST" and CONFIRM_FIELD in request.POST else None)
    if form.is_bound and form.is_valid():
        try:
            with operator_action(
                actor=request.user, permissions=workflow.permission, action=workflow.audit_action,
                reason=form.cleaned_data["reason"], detail=_audit_detail(form.cleaned_data),
            ) as audit:  # fmt: skip
                audit.detail.update(workflow.perform(None, form.cleaned_data) or {})
        except ApplicationError as exc:
            modeladmin.message_user(request, error_text(exc), messages.WARNING)
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


class AuditReasonForm(forms.ModelForm):
    """An admin edit form that asks why: the reason goes to the audit log with the change."""

    audit_reason = forms.CharField(
        label="Reason",
        max_length=500,
        required=False,
        widget=forms.TextInput(attrs={"size": 70}),
        help_text="Why: recorded in the audit log with your name and the time.",
    )


class OperatorAdminMixin:
    """The console's ModelAdmin base: every write goes through a service, checked and audited.

    - `@admin.action(permissions=["revoke_apikey"])` hides an action from users without
      console.revoke_apikey, and a POST naming it anyway gets 403 (Django alone would answer "No action
      selected" with a redirect).
    - Django's "Delete selected" action and bare row deletes are gone: a ModelAdmin whose model has a
      delete service defines `perform_delete(obj, data)` (and lists "delete_through_service" in its
      actions); deleting then asks for a reason, calls the service and is audited. Others cannot delete.
    - `view_only = True`: nothing to edit (every field read-only), so no save that writes the row as is.
    - Adds and edits: a ModelAdmin defines `save_changes(request, obj, form, created=...)` (the edits,
      through `admin_operator_action`) and, if its model has a create service, `perform_create(data)` (the
      new object); the create is then checked against the add permission and audited, and a service's
      refusal is shown as "Not saved: ..." Others write their own `save_model` the same way.
    """

    view_only = False
    create_audit_action = ""
    delete_audit_action = ""

    def changelist_view(self, request, extra_context=None):
        # Django skips action handling altogether when the user has no action left, so check here.
        if request.method == "POST":
            name = request.POST.get("action", "")
            declared = {action if isinstance(action, str) else action.__name__ for action in (self.actions or [])}
            if name in declared and name not in self.get_actions(request):
                raise PermissionDenied
        return super().changelist_view(request, extra_context)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_change_permission(self, request, obj=None):
        return not self.view_only and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return hasattr(self, "perform_delete") and operator_may(request.user, self._delete_permission())

    def _delete_permission(self) -> str:
        opts = self.model._meta
        return f"{opts.app_label}.delete_{opts.model_name}"

    def _delete_workflow(self) -> Workflow:
        opts = self.model._meta
        return Workflow(
            audit_action=self.delete_audit_action or f"{opts.model_name}.delete",
            permission=self._delete_permission(),
            title=f"Delete {opts.verbose_name_plural}",
            question=f"Delete these {opts.verbose_name_plural} and everything they hold? This cannot be undone.",
            submit_label="Yes, delete", done_message=f"{{count}} {opts.verbose_name}(s) deleted.", danger=True,
            perform=self.perform_delete,
        )  # fmt: skip

    @admin.action(description="Delete selected %(verbose_name_plural)s", permissions=["delete"])
    def delete_through_service(self, request, queryset):
        return confirmed_action(self, request, queryset, self._delete_workflow())

    def delete_view(self, request, object_id, extra_context=None):
        """The object page's Delete: the same confirmation with a reason, then the service."""
        from django.contrib.admin.utils import unquote
        from django.urls import reverse

        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        if not self.has_delete_permission(request, obj):
            raise PermissionDenied
        queryset = self.get_queryset(request).filter(pk=obj.pk)
        response = confirmed_action(self, request, queryset, self._delete_workflow())
        if response is not None:
            return response
        opts = self.model._meta
        return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))

    def save_model(self, request, obj, form, change):
        """Through `save_changes` (and `perform_create` for an add) where the ModelAdmin defines it; else
        Django's."""
        if not hasattr(self, "save_changes"):
            return super().save_model(request, obj, form, change)
        try:
            if not change:
                if not hasattr(self, "perform_create"):
                    raise PermissionDenied  # no create service: such admins refuse adds
                self._create_through_service(request, obj, form)
            self.save_changes(request, obj, form, created=not change)
        except ApplicationError as exc:
            self.message_user(request, f"Not saved: {exc.message}", messages.ERROR)

    def _create_through_service(self, request, obj, form) -> None:
        opts = self.model._meta
        with admin_operator_action(request, permissions=f"{opts.app_label}.add_{opts.model_name}",
                                   action=self.create_audit_action or f"{opts.model_name}.create",
                                   reason=form.cleaned_data.get("audit_reason", "")) as audit:  # fmt: skip
            audit.target = created = self.perform_create(form.cleaned_data)
        # The form's unsaved instance becomes the created row, so the admin's message and redirect name it.
        obj.pk, obj._state.adding = created.pk, False

    def delete_model(self, request, obj):  # only delete_view deletes, through the workflow above
        raise PermissionDenied

    def delete_queryset(self, request, queryset):
        raise PermissionDenied

    # Django asks these with the request (actions of the change list), unfold with the object's id too
    # (buttons of the object's page): the role map answers both the same way.
    def has_suspend_tenant_permission(self, request, obj=None):
        return operator_may(request.user, "console.suspend_tenant")

    def has_change_tier_permission(self, request, obj=None):
        return operator_may(request.user, "console.change_tier")

    def has_revoke_apikey_permission(self, request, obj=None):
        return operator_may(request.user, "console.revoke_apikey")

    def has_invalidate_cdn_permission(self, request, obj=None):
        return operator_may(request.user, "console.invalidate_cdn")

    def has_configure_cdn_permission(self, request, obj=None):
        return operator_may(request.user, "console.configure_cdn")

    def has_redeliver_webhook_permission(self, request, obj=None):
        return operator_may(request.user, "console.redeliver_webhook")

    def has_toggle_endpoint_permission(self, request, obj=None):
        return operator_may(request.user, "console.toggle_endpoint")

    def has_run_backup_permission(self, request, obj=None):
        return operator_may(request.user, "console.run_backup")

    def has_verify_backup_permission(self, request, obj=None):
        return operator_may(request.user, "console.verify_backup")

    def has_restore_tenant_permission(self, request, obj=None):
        return operator_may(request.user, "console.restore_tenant")

    def has_change_website_permission(self, request, obj=None):
        return operator_may(request.user, "tenants.change_website")

    def run_on_object(self, request, object_id, action: str):
        """A button of an object's page (unfold's actions_detail): the change list's action `action` on
        that one object, with the same confirmation page, permission check and audit; then back to it."""
        from django.contrib.admin.utils import unquote
        from django.http import Http404
        from django.urls import reverse

        queryset = self.get_queryset(request).filter(pk=unquote(object_id))
        if not queryset.exists():
            raise Http404
        response = getattr(self, action)(request, queryset)
        if response is not None:
            return response
        opts = self.model._meta
        return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id]))


def object_button(
    name: str,
    action: str,
    *,
    description: str,
    permission: str,
    url_path: str,
    danger: bool = False,
    icon: str | None = None,
):
    """A button on an object's page that runs the change-list action `action` on it: the ModelAdmin sets
    `<name> = object_button("<name>", ...)` and lists "<name>" in `actions_detail` (unfold)."""
    from unfold.decorators import action as unfold_action
    from unfold.enums import ActionVariant

    def button(self, request, object_id):
        return self.run_on_object(request, object_id, action)

    button.__name__ = button.__qualname__ = name
    variant = ActionVariant.DANGER if danger else ActionVariant.PRIMARY
    return unfold_action(description=description, url_path=url_path, permissions=[permission], variant=variant,
                         icon=icon)(button)  # fmt: skip


def changed_values(form, fields) -> dict:
    """The cleaned values of those of `fields` the operator changed on an admin form, for its save to pass
    to the service (a field read-only for this user is not on the form, so never among them)."""
    data, changed = form.cleaned_data, form.changed_data
    return {field: data[field] for field in fields if field in changed and field in data}


def admin_operator_action(request, *, permissions, action: str, target=None, reason: str = "", detail=None):
    """An edit form's save, through its service: checked against the role map and audited (source admin)."""
    return operator_action(
        actor=request.user, permissions=permissions, action=action, target=target, reason=reason, detail=detail
    )
