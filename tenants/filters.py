import django_filters

from core.filters import StrictFilterSet

from .models import Deployment, Tenant, Tier, Website


class TenantFilter(StrictFilterSet):
    tier = django_filters.ChoiceFilter(choices=Tier.choices)
    status = django_filters.ChoiceFilter(choices=Tenant.Status.choices)

    class Meta:
        model = Tenant
        fields = ["tier", "status"]


class WebsiteFilter(StrictFilterSet):
    # An id, not a choice among the visible tenants: another tenant's id (or an unknown one) matches
    # nothing in a key's own list, so it is answered with an empty list, never with an existence leak.
    tenant = django_filters.UUIDFilter(field_name="tenant_id", help_text="Operators: one tenant's websites.")
    status = django_filters.ChoiceFilter(choices=Website.Status.choices)
    hostname = django_filters.CharFilter(
        field_name="hostnames__hostname", lookup_expr="iexact", help_text="The website with this custom hostname."
    )

    class Meta:
        model = Website
        fields = ["tenant", "status", "hostname"]


class DeploymentFilter(StrictFilterSet):
    status = django_filters.ChoiceFilter(choices=Deployment.Status.choices)

    class Meta:
        model = Deployment
        fields = ["status", "trigger"]
