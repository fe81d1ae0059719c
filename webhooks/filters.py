import django_filters

from core.filters import StrictFilterSet

from .models import Delivery, Endpoint


class DeliveryFilter(StrictFilterSet):
    status = django_filters.ChoiceFilter(choices=Delivery.Status.choices)
    # An id: another tenant's endpoint (or an unknown one) matches nothing in a key's own list.
    endpoint = django_filters.UUIDFilter(field_name="endpoint_id", help_text="Deliveries to this endpoint only.")

    class Meta:
        model = Delivery
        fields = ["status", "endpoint"]


class EndpointFilter(StrictFilterSet):
    # `true` or `false` only: django-filter's BooleanFilter would read `null` or `maybe` as "no filter".
    is_active = django_filters.ChoiceFilter(
        choices=[("true", "true"), ("false", "false")], method="filter_is_active",
        help_text="Only the endpoints that are (true) or are not (false) active.",
    )  # fmt: skip

    class Meta:
        model = Endpoint
        fields = ["is_active"]

    def filter_is_active(self, queryset, name, value):
        return queryset.filter(is_active=value == "true")
