"""Operators' view of per-tenant usage and the cost attributed to it (GET only)."""

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors
from .usage import TenantUsage, tenant_usage_get, tenant_usage_list


class CostOutput(serializers.Serializer):
    storage = serializers.DecimalField(max_digits=18, decimal_places=4)
    bandwidth = serializers.DecimalField(max_digits=18, decimal_places=4)
    requests = serializers.DecimalField(max_digits=18, decimal_places=4)
    deployments = serializers.DecimalField(max_digits=18, decimal_places=4)
    total = serializers.DecimalField(max_digits=18, decimal_places=4)


class UnitPricesOutput(serializers.Serializer):
    storage_gib_month = serializers.DecimalField(max_digits=18, decimal_places=6)
    bandwidth_gib = serializers.DecimalField(max_digits=18, decimal_places=6)
    requests_million = serializers.DecimalField(max_digits=18, decimal_places=6)
    deployment = serializers.DecimalField(max_digits=18, decimal_places=6)


_COST = {"storage": "0.0042", "bandwidth": "0.0180", "requests": "0.0004", "deployments": "0.0300", "total": "0.0526"}


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A month so far", response_only=True,
            value={
                "tenant": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "slug": "acme", "tier": "starter",
                "storage_bytes": 181022, "bandwidth_bytes": 2306867, "requests": 412, "deployments": 3,
                "cost": _COST, "currency": "USD",
                "unit_prices": {
                    "storage_gib_month": "0.023000", "bandwidth_gib": "0.085000", "requests_million": "1.000000",
                    "deployment": "0.010000",
                },
            },
        )
    ]
)  # fmt: skip
class TenantUsageCostOutput(serializers.Serializer):
    tenant = serializers.UUIDField(source="tenant_id")
    slug = serializers.CharField()
    tier = serializers.CharField()
    storage_bytes = serializers.IntegerField()
    bandwidth_bytes = serializers.IntegerField()
    requests = serializers.IntegerField()
    deployments = serializers.IntegerField()
    cost = CostOutput()
    currency = serializers.SerializerMethodField()
    unit_prices = UnitPricesOutput(source="prices")

    def get_currency(self, usage: TenantUsage) -> str:
        return "USD"


class UsageCostListView(GenericAPIView):
    """Usage and cost of every tenant, paginated by slug."""

    serializer_class = TenantUsageCostOutput
    filter_backends = []
    operator_permissions = {"GET": "tenants.view_tenant"}

    def get_queryset(self):
        return selectors.tenant_list().order_by("slug")

    @extend_schema(summary="List every tenant's usage and cost", responses=TenantUsageCostOutput(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        usages = tenant_usage_list(tenant_ids=[tenant.pk for tenant in page])
        return self.get_paginated_response(TenantUsageCostOutput(usages, many=True).data)


class TenantUsageCostView(APIView):
    """Usage and cost of one tenant."""

    operator_permissions = {"GET": "tenants.view_tenant"}

    @extend_schema(summary="Read one tenant's usage and cost", responses=TenantUsageCostOutput)
    def get(self, request, tenant_id):
        tenant = selectors.tenant_get(tenant_id=tenant_id)
        return Response(TenantUsageCostOutput(tenant_usage_get(tenant=tenant)).data)
