from django.urls import path

from .usage_api import TenantUsageCostView, UsageCostListView

urlpatterns = [
    path("usage/costs/", UsageCostListView.as_view(), name="usage-cost-list"),
    path("tenants/<uuid:tenant_id>/usage-cost/", TenantUsageCostView.as_view(), name="tenant-usage-cost"),
]
