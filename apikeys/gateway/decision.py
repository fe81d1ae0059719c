"""The gateway's decision for one presented key: cached state in one round trip, the database on a miss.

Steady state is one `lua/gateway.lua` call and no query. A miss (first use, or after a record's TTL)
loads the key and its tenant from the database, fills the cache only where still absent, and asks again.
"""

import logging
from typing import NamedTuple

from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone
from redis.exceptions import RedisError

from ..keyformat import ParsedKey, hashes_match
from ..models import ApiKey
from . import base, outcomes

logger = logging.getLogger(__name__)


class BackendUnavailable(Exception):
    """The shared store (Redis) did not answer."""


class ApiKeyContext(NamedTuple):
    """What a view learns about the key that authenticated the request (never the key itself)."""

    id: str
    tenant_id: str
    prefix: str
    scopes: frozenset[str]
    tier: str
    limit: int | None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


# Access decisions read the primary: a key just created, revoked or rotated, or a tenant just
# suspended, must count at once, whatever a replica's lag.
ACCESS_DB = DEFAULT_DB_ALIAS


class PendingDecision:
    """The gateway's decision for one key, asked of Redis at once and read when it is needed.

    The script call is sent when the request arrives and its reply read just before the view runs, so
    the round trip overlaps the rest of the middleware chain and URL resolution instead of adding to
    them. A miss (first use, or after a record's TTL) is completed synchronously from the database.
    """

    def __init__(self, parsed: ParsedKey, cost: int = 1):
        self.parsed = parsed
        self.cost = cost
        self._store = base.gateway_store()
        self._outcomes = outcomes.pending.take(older_than=outcomes.PIGGYBACK_SECONDS)
        self._error: RedisError | None = None
        try:
            self._reply = self._store.send_evaluate(
                lookup_id=parsed.lookup_id, secret_hash=parsed.secret_hash, outcomes=self._outcomes, cost=cost
            )
        except RedisError as exc:
            self._error = exc

    def result(self) -> base.Decision:
        """Read the reply (once); raises BackendUnavailable when Redis did not answer."""
        parsed = self.parsed
        try:
            if self._error is not None:
                raise self._error
            decision = self._reply()
        except RedisError as exc:
            outcomes.pending.put_back(self._outcomes)
            raise BackendUnavailable(str(exc)) from exc
        store = self._store
        # At most two fills: the key record, then its tenant's state.
        for _ in range(2):
            if decision.code == base.MISS:
                api_key = ApiKey.objects.using(ACCESS_DB).filter(lookup_id=parsed.lookup_id).first()
                if api_key is None or not hashes_match(api_key.secret_hash, parsed.secret_hash):
                    return base.Decision(base.INVALID)
                _call(store.fill_record, parsed.lookup_id, base.record_fields(api_key))
            elif decision.code == base.TENANT_MISS:
                from tenants.models import Tenant

                tenant = Tenant.objects.using(ACCESS_DB).filter(pk=decision.tenant_id).first()
                if tenant is None:
                    return base.Decision(base.INVALID)
                _call(store.fill_tenant, str(tenant.pk), gateway_tenant_fields(tenant))
            else:
                return decision
            decision = _call(
                store.evaluate, lookup_id=parsed.lookup_id, secret_hash=parsed.secret_hash, outcomes=[], cost=self.cost
            )
        return decision


def decide(parsed: ParsedKey, cost: int = 1) -> base.Decision:
    return PendingDecision(parsed, cost).result()


def decide_from_database(parsed: ParsedKey) -> base.Decision:
    """Authentication without the shared store (fail-open mode during a Redis outage): no limit applied."""
    api_key = ApiKey.objects.using(ACCESS_DB).select_related("tenant").filter(lookup_id=parsed.lookup_id).first()
    if api_key is None or not hashes_match(api_key.secret_hash, parsed.secret_hash):
        return base.Decision(base.INVALID)
    common = {"key_id": str(api_key.pk), "tenant_id": str(api_key.tenant_id)}
    if api_key.revoked_at:
        return base.Decision(base.REVOKED, **common)
    if api_key.expires_at and api_key.expires_at <= timezone.now():
        return base.Decision(base.EXPIRED, **common)
    if not api_key.tenant.is_active:
        return base.Decision(base.SUSPENDED, **common)
    from tenants.plans import tenant_usage_plan

    plan = tenant_usage_plan(api_key.tenant)
    minute_limit = plan.requests_per_minute or 0
    key_limit = api_key.rate_limit_per_minute or 0
    if minute_limit and key_limit >= minute_limit:
        key_limit = 0
    # The per-minute policy that would bind is named (X-RateLimit-Limit), though nothing is counted.
    policy, limit = (base.KEY_POLICY, key_limit) if key_limit else (base.MINUTE_POLICY, minute_limit)
    return base.Decision(
        base.OK, scopes=tuple(api_key.scopes), tier=api_key.tenant.tier, remaining=-1, policy=policy, limit=limit,
        burst_limit=plan.burst_per_second or 0, minute_limit=minute_limit, key_limit=key_limit,
        monthly_quota=plan.monthly_quota or 0, **common,
    )  # fmt: skip


def _call(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except RedisError as exc:
        raise BackendUnavailable(str(exc)) from exc


def publish_key(api_key: ApiKey) -> None:
    """Overwrite the cached record (after revoke, rotate): every process sees it on its next request."""
    try:
        base.gateway_store().put_record(api_key.lookup_id, base.record_fields(api_key))
    except RedisError:
        # The record would stay stale up to its TTL; say so loudly (id only, never the key).
        logger.error("could not publish api key id=%s to the gateway cache", api_key.pk)
        raise


def gateway_tenant_fields(tenant) -> dict:
    """The tenant's cached record: status, usage plan, and the units its month counter starts from should
    Redis have lost it (two queries, on a miss or a change only)."""
    from tenants.plans import tenant_usage_plan

    from ..selectors import tenant_month_units

    plan = tenant_usage_plan(tenant)
    month = base.current_month()
    return base.tenant_fields(
        status=tenant.status, tier=tenant.tier, burst=plan.burst_per_second, minute=plan.requests_per_minute,
        quota=plan.monthly_quota, month=month.id, month_units=tenant_month_units(tenant_id=tenant.pk, month=month),
    )  # fmt: skip


def publish_tenant(tenant) -> None:
    """Called from tenants.access.publish_tenant_access after a change of status, tier or usage plan."""
    base.gateway_store().put_tenant(str(tenant.pk), gateway_tenant_fields(tenant))
