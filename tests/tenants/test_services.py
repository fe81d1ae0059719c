import subprocess
import sys
import threading

import pytest
from django.db import connection

from core.exceptions import ApplicationError, ConflictError
from tenants import services
from tenants.access import tenant_is_active
from tenants.models import Deployment, Tenant, Website
from tests.helpers import hostnames_verified

pytestmark = pytest.mark.django_db


def test_tenant_create_refuses_duplicate_slug(tenant):
    with pytest.raises(ConflictError) as error:
        services.tenant_create(name="Again", slug="tenant-a")
    assert error.value.fields == {"slug": ["This slug is taken."]}


def test_tenant_create_validates_tier():
    with pytest.raises(Exception) as error:
        services.tenant_create(name="X", slug="x", tier="platinum")
    assert "tier" in str(error.value)
    assert not Tenant.objects.filter(slug="x").exists()


def test_website_hostnames_normalised_and_conflicts_refused(tenant):
    website = services.website_create(tenant=tenant, name="One", hostnames=["WWW.Example.COM."])
    assert [h.hostname for h in website.hostnames.all()] == ["www.example.com"]
    hostnames_verified("www.example.com")
    other = services.tenant_create(name="Other", slug="other")
    with pytest.raises(ConflictError) as error:
        services.website_create(tenant=other, name="Two", hostnames=["www.example.com"])
    assert "hostnames" in error.value.fields
    assert not Website.objects.filter(name="Two").exists()  # nothing half-written
    with pytest.raises(ApplicationError) as error:
        services.website_create(tenant=other, name="Three", hostnames=["bad_host!"])
    assert error.value.status_code == 400 and "hostnames" in error.value.fields


def test_website_update_replaces_hostnames(website):
    services.website_update(website=website, hostnames=["new.a.test", "www.a.test"])
    assert sorted(website.hostnames.values_list("hostname", flat=True)) == ["new.a.test", "www.a.test"]
    services.website_update(website=website, hostnames=["new.a.test"])
    assert list(website.hostnames.values_list("hostname", flat=True)) == ["new.a.test"]


def test_deployment_lifecycle_activates_and_numbers(website):
    from tenants.bundles import bundle_build

    bundle = bundle_build({"index.html": "<h1>hi</h1>"})
    first = services.deployment_create(website=website, run=False, bundle=bundle)
    second = services.deployment_create(website=website, run=False, bundle=bundle)
    assert (first.number, second.number) == (1, 2)
    services.deployment_execute(deployment=first)
    website.refresh_from_db()
    assert website.active_deployment_id == first.pk
    services.deployment_start(deployment=second)
    services.deployment_fail(deployment=second, error="build failed")
    website.refresh_from_db()
    assert website.active_deployment_id == first.pk  # a failed deploy leaves the previous one serving
    second.refresh_from_db()
    assert second.status == Deployment.Status.FAILED and second.finished_at >= second.started_at
    with pytest.raises(ConflictError):
        services.deployment_start(deployment=second)


def test_disabled_website_refuses_deployments(website):
    services.website_update(website=website, status=Website.Status.DISABLED)
    with pytest.raises(ConflictError):
        services.deployment_create(website=website, run=False)


@pytest.mark.django_db(transaction=True)
def test_concurrent_deployments_get_distinct_numbers(website):
    numbers, errors = [], []

    def create():
        try:
            numbers.append(services.deployment_create(website=website, run=False).number)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(numbers) == list(range(1, 9))


@pytest.mark.django_db(transaction=True)
def test_suspension_cuts_access_at_once_in_another_process(tenant, test_database_env):
    assert tenant_is_active(tenant.pk)
    services.tenant_suspend(tenant=tenant, reason="unpaid invoices")
    assert not tenant_is_active(tenant.pk)
    check = (
        "import django; django.setup(); from tenants.access import tenant_is_active; "
        f"print(tenant_is_active('{tenant.pk}'))"
    )
    result = subprocess.run([sys.executable, "-c", check], env=test_database_env, capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr
    services.tenant_reactivate(tenant=tenant)
    assert tenant_is_active(tenant.pk)
    with pytest.raises(ConflictError):
        services.tenant_reactivate(tenant=tenant)


@pytest.mark.django_db(transaction=True)
def test_rolled_back_suspension_publishes_nothing(tenant):
    from django.db import transaction

    assert tenant_is_active(tenant.pk)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.tenant_suspend(tenant=tenant, reason="oops")
        raise RuntimeError("roll back")
    assert tenant_is_active(tenant.pk)
