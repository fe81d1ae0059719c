"""The console's "restore a tenant export" workflow: a dry run first, then a confirmed restore.

The dry run shows, per table, the tenant's rows now and in the export, the rows the restore deletes and
any conflict that makes it impossible, and hands the page a signed token for exactly this export, tenant
and operator; the restore is refused on the server without it, so nobody restores without having seen
what it will do. The service audits both steps (and a refusal), as it does for the command line.
"""

from django import forms
from django.contrib import messages
from django.contrib.admin import helpers
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from console.workflows import ReasonForm
from core.exceptions import ApplicationError

from . import tenant_restore
from .models import TenantExport

DRY_RUN_SIGNING_SALT = "backups.restore-tenant.dry-run"
TOKEN_MAX_AGE_SECONDS = tenant_restore.RESTORE_DRY_RUN_VALID_SECONDS


class RestoreTenantForm(ReasonForm):
    tenant = forms.CharField(max_length=100, help_text="The tenant's slug, or its id when it has been deleted since.")

    def clean_tenant(self) -> str:
        try:
            return tenant_restore.tenant_resolve(self.cleaned_data["tenant"])
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from exc


def _tenant_label(tenant_id: str) -> str:
    """How the confirmation names the tenant: its name and slug, or its id when it was deleted since."""
    from tenants.models import Tenant

    tenant = Tenant.objects.filter(pk=tenant_id).only("name", "slug").first()
    if tenant is None:
        return f"tenant {tenant_id} (deleted since the export)"
    return f"{tenant.name} ({tenant.slug})"


def _token_payload(export: TenantExport, tenant_id: str, user) -> dict:
    return {"export": str(export.pk), "tenant": tenant_id, "user": user.pk}


def tenant_restore_workflow(modeladmin, request, queryset):
    if not request.user.has_perm("console.restore_tenant"):
        raise PermissionDenied
    exports = list(queryset[:2])
    if len(exports) != 1 or exports[0].status != TenantExport.Status.SUCCEEDED:
        modeladmin.message_user(request, "Select exactly one successful export.", messages.ERROR)
        return None
    export = exports[0]
    step = "apply" if "apply" in request.POST else "dry_run" if "dry_run" in request.POST else None
    form = RestoreTenantForm(request.POST if step else None)
    plan, token, tenant_label = None, "", ""
    if step and form.is_valid():
        tenant_id, reason = form.cleaned_data["tenant"], form.cleaned_data["reason"]
        tenant_label = _tenant_label(tenant_id)
        if step == "apply":
            try:
                proven = signing.loads(request.POST.get("dry_run_token", ""), salt=DRY_RUN_SIGNING_SALT,
                                       max_age=TOKEN_MAX_AGE_SECONDS)  # fmt: skip
            except signing.BadSignature:
                proven = None
            if proven != _token_payload(export, tenant_id, request.user):
                form.add_error(None, "Run the dry run for this tenant first (or again: it is valid for 30 minutes).")
            else:
                try:
                    tenant_restore.tenant_export_restore(
                        export=export, tenant_id=tenant_id, actor=request.user, reason=reason
                    )
                except ApplicationError as exc:
                    modeladmin.message_user(request, f"Restore refused: {exc.message}", messages.ERROR)
                else:
                    modeladmin.message_user(request, f"Tenant {tenant_label} restored from {export}.", messages.SUCCESS)
                return None
        else:
            try:
                plan = tenant_restore.tenant_export_restore(
                    export=export, tenant_id=tenant_id, dry_run=True, actor=request.user, reason=reason
                )
            except ApplicationError as exc:
                form.add_error("tenant", exc.message)
            else:
                if not plan.conflicts:
                    token = signing.dumps(_token_payload(export, tenant_id, request.user), salt=DRY_RUN_SIGNING_SALT)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Restore a tenant from an export",
        "export": export,
        "form": form,
        "plan": plan,
        "tenant_label": tenant_label,
        "dry_run_token": token,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "opts": modeladmin.model._meta,
    }
    return TemplateResponse(request, "admin/backups/tenantexport/restore_tenant.html", context)
