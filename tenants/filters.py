import django_filters

from .models import Deployment, Tenant, Tier, Website


class TenantFilter(django_filters.FilterSet):
    tier = django_filters.ChoiceFilter(choices=Tier.choices)
    status = django_filters.ChoiceFilter(choices=Tenant.Status.choices)

    class Meta:
        model = Tenant
        fields = ["tier", "status"]


def _visible_tenants(request):
    """The tenants a filter may name: an API key's own only, so naming another tenant is answered
    exactly as naming one that does not exist (no existence leak); every tenant for operators."""
    tenant = getattr(request, "tenant", None)
    return Tenant.objects.filter(pk=tenant.pk) if tenant is not None else Tenant.objects.all()


class WebsiteFilter(django_filters.FilterSet):
    tenant = django_filters.ModelChoiceFilter(queryset=_visible_tenants)
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
