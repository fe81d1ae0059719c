"""Writes for API keys and usage. Each runs in one transaction; the gateway cache follows on commit."""

import logging
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.exceptions import ApplicationError, ConflictError
from tenants.models import Tenant

from .gateway import base as gateway_base
from .gateway.decision import publish_key
from .keyformat import generate_key, last_four
from .models import ApiKey, ApiUsageMinute, TenantUsageMonth
from .scopes import SCOPES

logger = logging.getLogger(__name__)

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


def _check_granted(scopes: list[str], granting_scopes: frozenset[str] | None) -> None:
    """A key never yields a key (created or rotated) with a scope it lacks itself."""
    if granting_scopes is None:  # an operator
        return
    missing = sorted(set(scopes) - set(granting_scopes))
    if missing:
        raise ApplicationError(
            "insufficient_scope",
            "A key can only grant scopes it holds.",
            fields={"scopes": [f"Not held by this key: {', '.join(missing)}."]},
            status_code=403,
        )


def apikey_limit_check(*, tenant, rate_limit_per_minute: int | None) -> None:
    """A key's own limit can only lower its tenant's (the tier's, or an operator's override)."""
    if rate_limit_per_minute is None:
        return
    if rate_limit_per_minute < 1:
        raise _invalid("rate_limit_per_minute", "Must be at least 1.")
    ceiling = tenant.requests_per_minute
    if ceiling is not None and rate_limit_per_minute > ceiling:
        raise _invalid(
            "rate_limit_per_minute",
            f"At most the tenant's limit of {ceiling} requests a minute (over all its keys); "
            "only an operator can raise that.",
        )


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
    granting_scopes: frozenset[str] | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns it with the raw key, which is shown once and never stored.

    `granting_scopes`: the scopes of the key asking for this one (None for an operator).
    """
    name = (name or "").strip()
    if not name:
        raise _invalid("name", "This field is required.")
    if len(name) > 200:
        raise _invalid("name", "At most 200 characters.")
    scopes = _validate_scopes(scopes)
    _check_granted(scopes, granting_scopes)
    if expires_at is not None and expires_at <= timezone.now():
        raise _invalid("expires_at", "Must be in the future.")
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)  # serialises the count of active keys
    apikey_limit_check(tenant=tenant, rate_limit_per_minute=rate_limit_per_minute)
    if not tenant.is_active:
        raise ConflictError("The tenant is suspended.", code="invalid_state")
    active = ApiKey.objects.filter(tenant=tenant, revoked_at__isnull=True).exclude(expires_at__lte=timezone.now())
    if active.count() >= settings.API_KEY_MAX_ACTIVE_PER_TENANT:
        raise ConflictError(
            f"The tenant has {settings.API_KEY_MAX_ACTIVE_PER_TENANT} active keys, the most it may hold; "
            "revoke one first.",
            code="too_many_keys",
        )
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


_UNCHANGED = object()


@transaction.atomic
def apikey_update(*, api_key: ApiKey, name: str | None = None, rate_limit_per_minute=_UNCHANGED) -> ApiKey:
    """Rename a key or set its own limit (None: the tenant's); the gateway applies it from the next request."""
    api_key = ApiKey.objects.select_for_update().select_related("tenant").get(pk=api_key.pk)
    if name is not None:
        name = name.strip()
        if not name or len(name) > 200:
            raise _invalid("name", "Between 1 and 200 characters.")
        api_key.name = name
    if rate_limit_per_minute is not _UNCHANGED:
        apikey_limit_check(tenant=api_key.tenant, rate_limit_per_minute=rate_limit_per_minute)
        api_key.rate_limit_per_minute = rate_limit_per_minute
    api_key.save(update_fields=["name", "rate_limit_per_minute"])
    _publish_after_commit(api_key)
    logger.info("api key updated id=%s limit=%s", api_key.pk, api_key.rate_limit_per_minute)
    return api_key


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


@transaction.atomic
def apikey_rotate(
    *, api_key: ApiKey, grace_seconds: int, rotated_by=None, granting_scopes: frozenset[str] | None = None
) -> tuple[ApiKey, str]:
    """A new key with the same name, scopes and limit; the old one keeps working for the grace period.

    The rules of creation apply (`granting_scopes` as in apikey_create, the tenant's limits and key count),
    and a key is rotated once: its successor is the one to rotate next, so rotation cannot multiply keys.
    """
    max_grace = settings.API_KEY_ROTATION_MAX_GRACE_SECONDS
    if not 0 <= grace_seconds <= max_grace:
        raise _invalid("grace_seconds", f"Between 0 and {max_grace}.")
    old = ApiKey.objects.select_for_update().select_related("tenant").get(pk=api_key.pk)
    if not old.is_active:
        raise ConflictError("Only an active key can be rotated.", code="invalid_state")
    if old.rotated_to_id is not None:
        raise ConflictError("This key was rotated already; rotate its successor.", code="invalid_state")
    _check_granted(old.scopes, granting_scopes)
    # A limit above what the tenant has now (its tier went down since) is dropped: the tenant's applies.
    limit = old.rate_limit_per_minute
    ceiling = old.tenant.requests_per_minute
    if limit is not None and ceiling is not None and limit > ceiling:
        limit = None
    new, raw_key = apikey_create(
        tenant=old.tenant,
        name=old.name,
        scopes=old.scopes,
        expires_at=old.expires_at,
        rate_limit_per_minute=limit,
        created_by=rotated_by,
        granting_scopes=granting_scopes,
        # The old key leaves the count once its grace ends; until then both are active.
    )
    grace_end = timezone.now() + timedelta(seconds=grace_seconds)
    old.expires_at = min(grace_end, old.expires_at) if old.expires_at else grace_end
    old.rotated_to = new
    old.save(update_fields=["expires_at", "rotated_to"])
    _publish_after_commit(old)
    logger.info("api key rotated id=%s to id=%s grace=%ss", old.pk, new.pk, grace_seconds)
    return new, raw_key


# --- removal and restore: the gateway's cache follows the database --------------------------------


class KeyState(NamedTuple):
    lookup_id: str
    secret_hash: str
    revoked_at: datetime | None
    revoked_by: str
    revoked_reason: str
    expires_at: datetime | None


def apikeys_state(*, tenant_id) -> dict[str, KeyState]:
    """The tenant's keys as they are now, by id: what a restore must not make more valid."""
    rows = ApiKey.objects.filter(tenant_id=tenant_id).values_list(
        "pk", "lookup_id", "secret_hash", "revoked_at", "revoked_by", "revoked_reason", "expires_at"
    )
    return {str(pk): KeyState(*rest) for pk, *rest in rows}


def apikeys_reconcile_after_restore(*, tenant_id, before: dict[str, KeyState]) -> dict:
    """In a restore's transaction, after the tenant's rows were replaced: a key revoked before stays revoked
    and a key that expired or was rotated since keeps its earlier end; after commit, the gateway's cache
    gets every restored key's record, and the keys the restore removed are refused at once."""
    kept_revoked = 0
    for api_key in ApiKey.objects.select_for_update().filter(tenant_id=tenant_id, pk__in=list(before)):
        was = before[str(api_key.pk)]
        changed = []
        if was.revoked_at is not None and (api_key.revoked_at is None or api_key.revoked_at > was.revoked_at):
            api_key.revoked_at, api_key.revoked_by, api_key.revoked_reason = (
                was.revoked_at, was.revoked_by, was.revoked_reason,
            )  # fmt: skip
            changed += ["revoked_at", "revoked_by", "revoked_reason"]
            kept_revoked += 1
        if was.expires_at is not None and (api_key.expires_at is None or api_key.expires_at > was.expires_at):
            api_key.expires_at = was.expires_at
            changed.append("expires_at")
        if changed:
            api_key.save(update_fields=changed)
    restored = list(ApiKey.objects.filter(tenant_id=tenant_id))
    present = {str(api_key.pk) for api_key in restored}
    removed = [(key_id, state) for key_id, state in before.items() if key_id not in present]
    transaction.on_commit(lambda: _publish_many(restored, removed, tenant_id=str(tenant_id)))
    return {"keys_kept_revoked": kept_revoked, "keys_removed": len(removed)}


def apikeys_forget_after_commit(*, tenant_id, keep: set[str]) -> int:
    """The tenant's keys, except `keep`, are refused by the gateway once the caller's transaction commits
    (they are about to be deleted). Returns how many."""
    removed = [(key_id, state) for key_id, state in apikeys_state(tenant_id=tenant_id).items() if key_id not in keep]
    transaction.on_commit(lambda: _publish_many([], removed, tenant_id=str(tenant_id)))
    return len(removed)


def _publish_many(api_keys: list[ApiKey], removed: list[tuple[str, KeyState]], *, tenant_id: str) -> None:
    store = gateway_base.gateway_store()
    for api_key in api_keys:
        publish_key(api_key)
    for key_id, state in removed:
        fields = gateway_base.removed_record_fields(key_id=key_id, tenant_id=tenant_id, secret_hash=state.secret_hash)
        store.put_record(state.lookup_id, fields)


# --- usage ------------------------------------------------------------------------------------

_METRICS = {
    "r": "requests",
    "c4": "client_errors",
    "c5": "server_errors",
    "l": "rate_limited",
    "ls": "latency_ms_sum",
    "lm": "latency_ms_max",
    "u": "units",
}
# The share of the monthly quota at which `usage.quota.warning` goes out.
QUOTA_WARNING_RATIO = 0.8


def usage_rollup() -> dict:
    """Copy per-minute counters from Redis into PostgreSQL and last-used stamps onto keys.

    Idempotent: rows get the absolute values Redis holds, so a rerun (or a crash halfway) never counts
    twice. A minute is dropped from the to-do list once it has settled.
    """
    store = gateway_base.gateway_store()
    now = int(timezone.now().timestamp())
    rows = 0
    settled = []
    active_tenants: set[str] = set()
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
        active_tenants.update(str(tenant_id) for tenant_id in tenants.values())
        if minute + 60 + USAGE_SETTLE_SECONDS < now:
            settled.append(minute)
    store.usage_forget(settled)

    stamps = store.last_used_read()
    for key_id, stamp in stamps.items():
        used_at = datetime.fromtimestamp(stamp, tz=UTC)
        ApiKey.objects.filter(pk=key_id).exclude(last_used_at__gte=used_at).update(last_used_at=used_at)
    store.last_used_forget(stamps)
    alerts = usage_months_persist(tenant_ids=sorted(active_tenants))
    return {"usage_rows": rows, "minutes_settled": len(settled), "keys_last_used": len(stamps), "quota_alerts": alerts}


def usage_months_persist(*, tenant_ids: list[str]) -> int:
    """Copy the gateway's month counters of these tenants into TenantUsageMonth (never lowering a figure),
    and send `usage.quota.warning` at 80 % and `usage.quota.exceeded` at 100 % of the quota, each once a
    month. Returns how many alerts were recorded."""
    from tenants.plans import tenant_usage_plan

    month = gateway_base.current_month()
    counted = gateway_base.gateway_store().month_units(tenant_ids, month.id)
    alerts = 0
    for tenant in Tenant.objects.filter(pk__in=list(counted)):
        with transaction.atomic():
            row, _ = TenantUsageMonth.objects.select_for_update().get_or_create(tenant=tenant, month=month.first_day)
            row.units = max(row.units, counted[str(tenant.pk)])
            quota = tenant_usage_plan(tenant).monthly_quota
            alerts += _quota_alerts(row, tenant=tenant, quota=quota, month=month)
            row.save()
    return alerts


def _quota_alerts(row: TenantUsageMonth, *, tenant, quota: int | None, month) -> int:
    """Record the month's quota events due (in the caller's transaction, with the stamps that send each once)."""
    from webhooks.services import event_record

    if not quota:
        return 0
    data = {
        "usage": {
            "month": f"{month.first_day:%Y-%m}", "quota": quota, "used": row.units,
            "remaining": max(quota - row.units, 0), "resets_at": datetime.fromtimestamp(month.end, tz=UTC),
        }
    }  # fmt: skip
    sent = 0
    if row.warning_sent_at is None and row.units >= quota * QUOTA_WARNING_RATIO:
        event_record(tenant=tenant, type="usage.quota.warning", data=data)
        row.warning_sent_at = timezone.now()
        sent += 1
    if row.exceeded_sent_at is None and row.units >= quota:
        event_record(tenant=tenant, type="usage.quota.exceeded", data=data)
        row.exceeded_sent_at = timezone.now()
        sent += 1
    if sent:
        logger.info("usage quota alerts tenant=%s month=%s used=%s quota=%s", tenant.pk, month.id, row.units, quota)
    return sent
