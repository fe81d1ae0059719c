"""Writes for API keys and usage. Each runs in one transaction; the gateway cache follows on commit."""

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from platform_site.exceptions import ApplicationError, ConflictError

from . import ratelimit
from .gateway import publish_key
from .keyformat import generate_key, last_four
from .models import ApiKey, ApiUsageMinute
from .scopes import SCOPES

logger = logging.getLogger(__name__)

MAX_GRACE_SECONDS = 30 * 86_400
# Usage minutes stay in Redis this long after they end, so late outcomes still reach PostgreSQL.
USAGE_SETTLE_SECONDS = 600


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError("invalid", "The request is invalid.", fields={field: [message]})


def _validate_scopes(scopes: list[str]) -> list[str]:
    if not scopes:
        raise _invalid("scopes", "Give at least one scope.")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise _invalid("scopes", f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(SCOPES)}.")
    return sorted(set(scopes))


def _event_record(api_key: ApiKey, event_type: str) -> None:
    """apikey.created|revoked to the tenant's webhooks: the key's id, name, prefix and scopes, never the key."""
    from webhooks.services import event_record

    data = {"apikey": {"id": str(api_key.pk), "name": api_key.name, "prefix": api_key.prefix, "scopes": api_key.scopes}}
    event_record(tenant=api_key.tenant, type=event_type, data=data)


def _publish_after_commit(api_key: ApiKey) -> None:
    transaction.on_commit(lambda: publish_key(api_key))


@transaction.atomic
def apikey_create(
    *,
    tenant,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
    rate_limit_per_minute: int | None = None,
    created_by=None,
) -> tuple[ApiKey, str]:
    """Create a key; returns it with the raw key, which is shown once and never stored."""
    name = (name or "").strip()
    if not name:
        raise _invalid("name", "This field is required.")
    if len(name) > 200:
        raise _invalid("name", "At most 200 characters.")
    scopes = _validate_scopes(scopes)
    if expires_at is not None and expires_at <= timezone.now():
        raise _invalid("expires_at", "Must be in the future.")
    if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
        raise _invalid("rate_limit_per_minute", "Must be at least 1.")
    if not tenant.is_active:
        raise ConflictError("The tenant is suspended.", code="invalid_state")
    raw_key, parsed = generate_key(settings.PLATFORM_ENVIRONMENT)
    api_key = ApiKey.objects.create(
        tenant=tenant,
        name=name,
        environment=parsed.environment,
        lookup_id=parsed.lookup_id,
        secret_hash=parsed.secret_hash,
        last_four=last_four(raw_key),
        scopes=scopes,
        expires_at=expires_at,
        rate_limit_per_minute=rate_limit_per_minute,
        created_by=created_by if getattr(created_by, "pk", None) else None,
    )
    _event_record(api_key, "apikey.created")
    logger.info("api key created id=%s prefix=%s tenant=%s", api_key.pk, api_key.prefix, tenant.pk)
    return api_key, raw_key


@transaction.atomic
def apikey_revoke(*, api_key: ApiKey, revoked_by: str, reason: str = "") -> ApiKey:
    """Revoke a key; every gateway process refuses it from its next request after commit."""
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if api_key.revoked_at is not None:
        raise ConflictError("The API key is already revoked.", code="invalid_state")
    api_key.revoked_at = timezone.now()
    api_key.revoked_by = str(revoked_by)[:200]
    api_key.revoked_reason = (reason or "")[:500]
    api_key.save(update_fields=["revoked_at", "revoked_by", "revoked_reason"])
    _publish_after_commit(api_key)
    _event_record(api_key, "apikey.revoked")
    logger.info("api key revoked id=%s prefix=%s by=%s", api_key.pk, api_key.prefix, api_key.revoked_by)
    return api_key


def apikey_revoke_many(*, api_key_ids: list, revoked_by: str, reason: str) -> int:
    """Revoke many keys (admin bulk action); already revoked ones are skipped. Returns how many."""
    revoked = 0
    for api_key in ApiKey.objects.filter(pk__in=api_key_ids, revoked_at__isnull=True):
        try:
            apikey_revoke(api_key=api_key, revoked_by=revoked_by, reason=reason)
        except ConflictError:  # revoked concurrently
            continue
        revoked += 1
    return revoked


@transaction.atomic
def apikey_rotate(*, api_key: ApiKey, grace_seconds: int, rotated_by=None) -> tuple[ApiKey, str]:
    """A new key with the same name, scopes and limit; the old one keeps working for the grace period."""
    if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise _invalid("grace_seconds", f"Between 0 and {MAX_GRACE_SECONDS}.")
    old = ApiKey.objects.select_for_update().select_related("tenant").get(pk=api_key.pk)
    if not old.is_active:
        raise ConflictError("Only an active key can be rotated.", code="invalid_state")
    new, raw_key = apikey_create(
        tenant=old.tenant,
        name=old.name,
        scopes=old.scopes,
        expires_at=old.expires_at,
        rate_limit_per_minute=old.rate_limit_per_minute,
        created_by=rotated_by,
    )
    grace_end = timezone.now() + timedelta(seconds=grace_seconds)
    old.expires_at = min(grace_end, old.expires_at) if old.expires_at else grace_end
    old.rotated_to = new
    old.save(update_fields=["expires_at", "rotated_to"])
    _publish_after_commit(old)
    logger.info("api key rotated id=%s to id=%s grace=%ss", old.pk, new.pk, grace_seconds)
    return new, raw_key


# --- usage ------------------------------------------------------------------------------------

_METRICS = {
    "r": "requests",
    "c4": "client_errors",
    "c5": "server_errors",
    "l": "rate_limited",
    "ls": "latency_ms_sum",
    "lm": "latency_ms_max",
}


def usage_rollup() -> dict:
    """Copy per-minute counters from Redis into PostgreSQL and last-used stamps onto keys.

    Idempotent: rows get the absolute values Redis holds, so a rerun (or a crash halfway) never counts
    twice. A minute is dropped from the to-do list once it has settled.
    """
    store = ratelimit.gateway_store()
    now = int(timezone.now().timestamp())
    rows = 0
    settled = []
    for minute in store.usage_minutes():
        usage = store.usage_read(minute)
        # Keys deleted since (with their tenant) are skipped: their usage went with them.
        tenants = {
            str(pk): tenant_id
            for pk, tenant_id in ApiKey.objects.filter(pk__in=list(usage)).values_list("pk", "tenant_id")
        }
        records = [
            ApiUsageMinute(
                api_key_id=key_id,
                tenant_id=tenants[key_id],
                minute=datetime.fromtimestamp(minute, tz=UTC),
                **{field: metrics.get(short, 0) for short, field in _METRICS.items()},
            )
            for key_id, metrics in usage.items()
            if key_id in tenants
        ]
        with transaction.atomic():
            ApiUsageMinute.objects.bulk_create(
                records,
                update_conflicts=True,
                unique_fields=["api_key", "minute"],
                update_fields=list(_METRICS.values()),
            )
        rows += len(records)
        if minute + 60 + USAGE_SETTLE_SECONDS < now:
            settled.append(minute)
    store.usage_forget(settled)

    stamps = store.last_used_read()
    for key_id, stamp in stamps.items():
        used_at = datetime.fromtimestamp(stamp, tz=UTC)
        ApiKey.objects.filter(pk=key_id).exclude(last_used_at__gte=used_at).update(last_used_at=used_at)
    store.last_used_forget(stamps)
    return {"usage_rows": rows, "minutes_settled": len(settled), "keys_last_used": len(stamps)}
