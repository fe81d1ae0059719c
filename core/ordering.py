"""`?ordering=`: the fields a list sorts by, and nothing else.

DRF's OrderingFilter drops a term it does not know and answers 200 in the default order, so a misspelt
`?ordering=-create_at` looked honoured. Here an unknown term is a 400 naming `ordering`, like any invalid
input, and the published description gives the accepted terms as a pattern.
"""

import re

from rest_framework import filters
from rest_framework.exceptions import ValidationError


class StrictOrderingFilter(filters.OrderingFilter):
    """OrderingFilter that refuses unknown terms (400) instead of ignoring them."""

    def remove_invalid_fields(self, queryset, fields, view, request):
        valid = super().remove_invalid_fields(queryset, fields, view, request)
        unknown = [term for term in fields if term not in valid]
        if unknown:
            allowed = ", ".join(self._names(view) or ["none"])
            raise ValidationError({self.ordering_param: [f"Unknown ordering {unknown[0]!r}; one of: {allowed}."]})
        return valid

    @staticmethod
    def _names(view) -> list[str]:
        fields = getattr(view, "ordering_fields", None) or []
        return [field for field in fields if isinstance(field, str)]

    def get_schema_operation_parameters(self, view):
        names = self._names(view)
        if not names:
            return []
        term = f"-?({'|'.join(map(re.escape, names))})"
        allowed = ", ".join(f"`{name}`" for name in names)
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": f"Sort by {allowed} (`-` first: descending); several, comma-separated.",
                "schema": {"type": "string", "pattern": f"^{term}(,{term})*$"},
            }
        ]
