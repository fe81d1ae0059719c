"""A tenant restore never revives a revoked key nor leaves valid a key it removed; the gateway follows at once."""

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from apikeys import services as apikey_services
from apikeys.models import ApiKey
from backups import tenant_exports as services
from backups import tenant_restore
from tenants import services as tenant_services

pytestmark = pytest.mark.django_db(transaction=True)


def _status(raw_key: str) -> tuple[int, str]:
    response = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw_key}").get("/api/v1/websites/")
    return response.status_code, response.json().get("error", {}).get("code", "") if response.status_code >= 400 else ""


def test_restore_keeps_revocations_and_refuses_removed_keys_at_once():
    tenant = tenant_services.tenant_create(name="Restored", slug="restored", tier="starter")
    # transaction=True: on-commit callbacks (the gateway's cache updates) run as in production.
    revoked_later, raw_revoked = apikey_services.apikey_create(tenant=tenant, name="leaked", scopes=["websites:read"])
    rotated_later, raw_rotated = apikey_services.apikey_create(tenant=tenant, name="rotated", scopes=["websites:read"])
    _, raw_kept = apikey_services.apikey_create(tenant=tenant, name="kept", scopes=["websites:read"])
    export = services.tenant_export_create()

    # After the export: one key revoked, one rotated (old one's grace over), one created.
    apikey_services.apikey_revoke(api_key=revoked_later, revoked_by="ops", reason="leaked in a log")
    apikey_services.apikey_rotate(api_key=rotated_later, grace_seconds=0)
    _, raw_new = apikey_services.apikey_create(tenant=tenant, name="new", scopes=["websites:read"])
    for raw_key in (raw_kept, raw_new, raw_revoked, raw_rotated):
        _status(raw_key)  # every record is now cached by the gateway
    assert _status(raw_new) == (200, "") and _status(raw_revoked) == (401, "revoked_api_key")

    tenant_restore.tenant_export_restore(export=export, tenant_id=tenant.pk, dry_run=True)
    tenant_restore.tenant_export_restore(export=export, tenant_id=tenant.pk)

    assert _status(raw_kept) == (200, "")
    assert _status(raw_revoked) == (401, "revoked_api_key")  # not revived by the export's unrevoked row
    revoked = ApiKey.objects.get(pk=revoked_later.pk)
    assert (revoked.revoked_by, revoked.revoked_reason) == ("ops", "leaked in a log")
    assert _status(raw_rotated) == (401, "expired_api_key")  # its earlier end is kept
    assert _status(raw_new) == (401, "invalid_api_key")  # the restore removed it: refused at once, from the cache
    assert not ApiKey.objects.filter(name="new").exists()


def test_a_rolled_back_restore_leaves_the_gateway_as_it_was():
    tenant = tenant_services.tenant_create(name="Rolled", slug="rolled", tier="starter")
    export = services.tenant_export_create()
    _, raw_new = apikey_services.apikey_create(tenant=tenant, name="new", scopes=["websites:read"])
    assert _status(raw_new) == (200, "")
    tenant_restore.tenant_export_restore(export=export, tenant_id=tenant.pk, dry_run=True)
    with pytest.raises(RuntimeError), transaction.atomic():
        tenant_restore.tenant_export_restore(export=export, tenant_id=tenant.pk)
        raise RuntimeError("the operator's transaction failed after the restore")
    assert _status(raw_new) == (200, "")  # nothing was published for a restore that never committed
