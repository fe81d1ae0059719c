"""How the console shows records: status badges coloured by meaning, and list filters whose titles read
as words ("By creation date", not "By created at"). Presentation only; no record is read or written here."""

from django.contrib import admin
from unfold.decorators import display

# A status value (of any model) and the badge colour that says what it means to an operator.
STATUS_COLOURS = {
    "active": "success",
    "succeeded": "success",
    "completed": "success",
    "verified": "success",
    "done": "success",
    "pending": "info",
    "running": "info",
    "in_progress": "info",
    "dry_run": "info",
    "disabled": "warning",
    "refused": "warning",
    "expired": "warning",
    "suspended": "danger",
    "failed": "danger",
    "revoked": "danger",
}


def status_badge(field: str = "status", *, description: str = "Status"):
    """A list column (and read-only field) showing `field` as a coloured badge with its choice label."""

    @display(description=description, ordering=field, label=STATUS_COLOURS)
    def badge(self, obj):
        return getattr(obj, field), getattr(obj, f"get_{field}_display")()

    return badge


def titled(title: str):
    """A list filter for a model field with its own title, of whatever kind Django picks for the field:
    `list_filter = [("created_at", titled("creation date"))]`."""

    class TitledFieldListFilter(admin.FieldListFilter):
        def __new__(cls, field, request, params, model, model_admin, field_path):
            spec = admin.FieldListFilter.create(field, request, params, model, model_admin, field_path=field_path)
            spec.title = title
            return spec

    return TitledFieldListFilter


class ActiveFilter(admin.SimpleListFilter):
    """`is_active` as "Active" / "Disabled" (Django's own reads "By is active: Yes / No"); the same query
    parameter as Django's boolean filter, so links to `?is_active__exact=0` keep working."""

    title = "state"
    parameter_name = "is_active__exact"

    def lookups(self, request, model_admin):
        return [("1", "Active"), ("0", "Disabled")]

    def queryset(self, request, queryset):
        if self.value() in ("0", "1"):
            return queryset.filter(is_active=self.value() == "1")
        return queryset


def json_block(data, encoder=None):
    """A read-only JSON field as an indented <pre>: unfold colours JSON with pygments' inline styles, which
    the CSP refuses (ConsoleConfig.ready puts this in their place)."""
    import json

    from django.utils.html import format_html

    return format_html('<pre class="console-json">{}</pre>', json.dumps(data, indent=2, sort_keys=True, cls=encoder))
