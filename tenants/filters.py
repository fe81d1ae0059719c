import django_filters

from .models import Deployment, Tenant, Tier, Website


class TenantFilter(django_filters.FilterSet):
    tier = django_filters.ChoiceFilter(choices=Tier.choices)
    status = django_filters.ChoiceFilter(choices=Tenant.Status.choices)

    class Meta:
        model = Tenant
        fields = ["tier", "status"]


class WebsiteFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Website.Status.choices)
    hostname = django_filters.CharFilter(field_name="hostnames__hostname", lookup_expr="iexact")

    class Meta:
        model = Website
        fields = ["tenant", "status", "hostname"]


class DeploymentFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Deployment.Status.choices)

    class Meta:
        model = Deployment
        fields = ["status", "trigger"]
