"""tenants/usage.py and the operators' usage-cost API."""

from decimal import Decimal

import pytest
from django.test import override_settings

from tenants import services
from tenants.models import Deployment
from tenants.usage import GIB, tenant_usage_get, usage_record
from tests.sitebundles import bundle_build, site_v1, site_v2


@pytest.fixture
def deployed_tenant(db):
    tenant = services.tenant_create(name="Usage Co", slug="usage-co", tier="professional")
    for name in ("one", "two"):
        website = services.website_create(tenant=tenant, name=name)
        for files in (site_v1(), site_v2()):
            deployment = services.deployment_create(website=website, run=False, bundle=bundle_build(files))
            services.deployment_execute(deployment=deployment)
    return tenant


@pytest.mark.django_db
def test_usage_counts_traffic_deployments_and_prices_it(deployed_tenant):
    usage_record(tenant_id=deployed_tenant.pk, requests=1, bytes_served=GIB)
    usage_record(tenant_id=deployed_tenant.pk, requests=999_999, bytes_served=GIB)
    usage = tenant_usage_get(tenant=deployed_tenant)
    assert usage.requests == 1_000_000
    assert usage.bandwidth_bytes == 2 * GIB
    assert usage.deployments == 4
    # Storage: the files each website serves now (its active deployment, site v2), not every upload.
    v2_bytes = sum(len(c.encode() if isinstance(c, str) else c) for c in site_v2().values())
    assert usage.storage_bytes == 2 * v2_bytes
    assert Deployment.objects.filter(website__tenant=deployed_tenant, number=2).first().total_bytes == v2_bytes
    cost = usage.cost
    assert cost.bandwidth == Decimal("0.1700")  # 2 GiB x 0.085
    assert cost.requests == Decimal("0.4000")
    assert cost.deployments == Decimal("0.0400")
    assert cost.total == Decimal("0.6100")


@pytest.mark.django_db
@override_settings(USAGE_DEPLOYMENT_SIZE_FIELD="number", USAGE_PRICE_STORAGE_GIB_MONTH=Decimal("1000"))
def test_storage_sums_the_active_deployment_of_each_website(deployed_tenant):
    # Configurable: with another integer field (the number, #2 for each website's active one): 2 + 2.
    usage = tenant_usage_get(tenant=deployed_tenant)
    assert usage.storage_bytes == 4
    assert usage.cost.storage == (Decimal(4) / GIB * 1000).quantize(Decimal("0.0001"))


@pytest.mark.django_db
def test_usage_of_other_tenants_is_not_mixed_in(deployed_tenant):
    other = services.tenant_create(name="Other", slug="other-usage")
    usage_record(tenant_id=other.pk, requests=5, bytes_served=10)
    assert tenant_usage_get(tenant=deployed_tenant).requests == 0
    assert tenant_usage_get(tenant=other).requests == 5


@pytest.mark.django_db
@override_settings(USAGE_PRICE_REQUESTS_MILLION=Decimal("2.5"))
def test_usage_cost_api_for_one_tenant(staff_client, deployed_tenant):
    usage_record(tenant_id=deployed_tenant.pk, requests=2_000_000)
    response = staff_client.get(f"/api/v1/tenants/{deployed_tenant.pk}/usage-cost/")
    assert response.status_code == 200
    body = response.json()
    assert body["tenant"] == str(deployed_tenant.pk)
    assert body["requests"] == 2_000_000
    assert body["deployments"] == 4
    assert body["cost"]["requests"] == "5.0000"
    assert body["unit_prices"]["requests_million"] == "2.500000"
    assert body["currency"] == "USD"


@pytest.mark.django_db
def test_usage_cost_list_is_paginated(staff_client, deployed_tenant):
    services.tenant_create(name="Second", slug="second-usage")
    response = staff_client.get("/api/v1/usage/costs/?page_size=1")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [row["slug"] for row in body["results"]] == ["second-usage"]


@pytest.mark.django_db
def test_usage_cost_api_errors(staff_client, client, deployed_tenant):
    missing = staff_client.get("/api/v1/tenants/00000000-0000-0000-0000-000000000000/usage-cost/")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    refused = client.get(f"/api/v1/tenants/{deployed_tenant.pk}/usage-cost/")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "not_authenticated"


@pytest.mark.django_db
def test_usage_cost_is_for_operators_not_api_keys(client, deployed_tenant):
    from apikeys.services import apikey_create

    _key, raw_key = apikey_create(tenant=deployed_tenant, name="ci", scopes=["usage:read", "websites:read"])
    refused = client.get(f"/api/v1/tenants/{deployed_tenant.pk}/usage-cost/", HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "operators_only"
