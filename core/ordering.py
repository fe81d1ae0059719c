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

    def get_ordering(self, request, queryset, view):
        if self.ordering_param not in request.query_params:
            return self.get_default_ordering(view)
        # Exactly as written: an empty value, a blank or a trailing comma is refused too, as the pattern says.
        terms = request.query_params[self.ordering_param].split(",")
        names = self._names(view)
        unknown = [term for term in terms if term.removeprefix("-") not in names]
        if unknown:
            allowed = ", ".join(names or ["none"])
            raise ValidationError({self.ordering_param: [f"Unknown ordering {unknown[0]!r}; one of: {allowed}."]})
        return terms

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
