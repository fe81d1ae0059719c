"""Constraints hold in PostgreSQL itself, not only in Python."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from tenants.models import Deployment, Hostname, Tenant, Website

pytestmark = pytest.mark.django_db


def test_runs_on_postgresql():
    assert connection.vendor == "postgresql"


def _refused(callable_):
    with pytest.raises(IntegrityError), transaction.atomic():
        callable_()


def test_tenant_constraints(tenant):
    _refused(lambda: Tenant.objects.filter(pk=tenant.pk).update(tier="platinum"))
    _refused(lambda: Tenant.objects.filter(pk=tenant.pk).update(status="deleted"))
    _refused(lambda: Tenant.objects.create(name="Other", slug="tenant-a"))
    _refused(lambda: Tenant.objects.create(name="Empty", slug=""))
    # suspended without a time
    _refused(lambda: Tenant.objects.filter(pk=tenant.pk).update(status="suspended", suspended_at=None))


def test_a_verified_hostname_is_unique_across_the_platform_case_insensitively(tenant, website):
    """www.a.test is verified for `website`: no other website may hold it verified. Pending claims by
    other websites may exist (only the DNS owner's ever verifies), one per website."""
    now = timezone.now()
    other = Website.objects.create(tenant=Tenant.objects.create(name="B", slug="b"), name="B site")
    claim = Hostname.objects.create(website=other, hostname="www.a.test")
    assert claim.status == Hostname.Status.PENDING and claim.verification_token
    _refused(lambda: Hostname.objects.filter(pk=claim.pk).update(status="verified", verified_at=now))
    _refused(lambda: Hostname.objects.create(website=other, hostname="www.a.test"))
    _refused(lambda: Hostname.objects.create(website=other, hostname="WWW.A.TEST"))
    _refused(lambda: Hostname.objects.filter(pk=claim.pk).update(status="verified"))  # without a time
    _refused(lambda: Hostname.objects.filter(pk=claim.pk).update(status="trusted"))
    assert Hostname.objects.create(website=other, hostname="b.test").verification_token != claim.verification_token


def test_website_name_unique_per_tenant(tenant, website):
    _refused(lambda: Website.objects.create(tenant=tenant, name="Site A"))
    _refused(lambda: Website.objects.filter(pk=website.pk).update(status="gone"))
    other = Tenant.objects.create(name="B", slug="b")
    Website.objects.create(tenant=other, name="Site A")  # same name, other tenant: fine


def test_deployment_constraints(website):
    Deployment.objects.create(website=website, number=1)
    _refused(lambda: Deployment.objects.create(website=website, number=1))
    _refused(lambda: Deployment.objects.create(website=website, number=0))
    _refused(lambda: Deployment.objects.create(website=website, number=2, status="exploded"))
    now = timezone.now()
    _refused(
        lambda: Deployment.objects.create(
            website=website, number=3, started_at=now, finished_at=now - timezone.timedelta(seconds=1)
        )
    )
