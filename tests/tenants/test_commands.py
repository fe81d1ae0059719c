import pytest
from django.core.management import CommandError, call_command

from tenants.models import Deployment, Tenant, Website

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent():
    call_command("seed_demo")
    call_command("seed_demo")
    assert set(Tenant.objects.values_list("tier", flat=True)) == {"professional", "free"}
    assert Website.objects.count() == 3
    assert Deployment.objects.count() == 6


def test_demo_superuser_refused_in_real_mode():
    with pytest.raises(CommandError, match="embedded mode only"):
        call_command("ensure_demo_superuser")
