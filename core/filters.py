"""The base of the API's list filters: a typed filter (a choice, an id, a boolean) given without a value is
refused, as any invalid value is.

django-filter skips an empty value (`?status=`) as if the filter were absent; a client that built the
query wrongly would then get the whole list and not know it.
"""

import django_filters


class StrictFilterSet(django_filters.FilterSet):
    def is_valid(self) -> bool:
        valid = super().is_valid()
        for name, filter_ in self.filters.items():
            if type(filter_) is django_filters.CharFilter:
                continue  # free text: empty is a value the published schema allows, and matches everything
            if name in self.data and all(value == "" for value in self.data.getlist(name)):
                self.form.add_error(name, "Give this filter a value, or leave it out.")
                valid = False
        return valid
