import django_filters

from .models import Delivery, Endpoint


def _visible_endpoints(request):
    """An API key's own endpoints only: naming another tenant's endpoint is answered exactly as naming
    one that does not exist (no existence leak); every endpoint for operators."""
    tenant = getattr(request, "tenant", None)
    return Endpoint.objects.filter(tenant=tenant) if tenant is not None else Endpoint.objects.all()


class DeliveryFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Delivery.Status.choices)
    endpoint = django_filters.ModelChoiceFilter(queryset=_visible_endpoints)

    class Meta:
        model = Delivery
        fields = ["status", "endpoint"]
