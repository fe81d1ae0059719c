"""The API gateway: auth -> rate limit -> tenant context -> view -> usage, for every /api/v1/ request.

A request without a key passes through untouched (operators use staff sessions; DRF answers 401 when
neither is present). Every refusal here uses the one JSON error shape and never names the key beyond
its prefix and id.
"""

import functools
import logging
import threading
import time
import uuid

from django.conf import settings
from django.db import DatabaseError
from django.urls import Resolver404, resolve
from django.utils.functional import SimpleLazyObject
from django_ratelimit.core import is_ratelimited

from core.exceptions import error_response
from observability import metrics

from .gateway import base, outcomes
from .gateway.decision import ApiKeyContext, BackendUnavailable, PendingDecision, decide_from_database
from .keyformat import KEY_PREFIX, MalformedKey, parse_key

logger = logging.getLogger(__name__)

_outage_lock = threading.Lock()
_outage_logged_at: float | None = None

_REFUSALS = {
    base.INVALID: (401, "invalid_api_key", "The API key is not valid."),
    base.REVOKED: (401, "revoked_api_key", "The API key has been revoked."),
    base.EXPIRED: (401, "expired_api_key", "The API key has expired."),
    base.SUSPENDED: (403, "tenant_suspended", "The tenant is suspended."),
}
# Reasons of api_key_auth_failures_total (observability/metrics.py).
_FAILURE_REASONS = {
    base.INVALID: "invalid",
    base.REVOKED: "revoked",
    base.EXPIRED: "expired",
    base.SUSPENDED: "tenant_suspended",
}


def presented_key(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return request.META.get("HTTP_X_API_KEY") or None


def guard_anonymous(request, *, group: str, rate: str, increment: bool) -> bool:
    """django-ratelimit on an anonymous surface; a cache outage never turns into a 500."""
    try:
        return is_ratelimited(request, group=group, key="ip", rate=rate, increment=increment)
    except Exception:
        _report_outage("django-ratelimit")
        return settings.API_GATEWAY_FAIL_MODE == "closed"


def _report_outage(where: str) -> None:
    """Count every request served without Redis; log it at most once per interval per process."""
    global _outage_logged_at
    mode = settings.API_GATEWAY_FAIL_MODE
    metrics.record_gateway_backend_error(mode=mode)
    with _outage_lock:
        now = time.monotonic()
        if _outage_logged_at is not None and now - _outage_logged_at < settings.API_GATEWAY_OUTAGE_LOG_INTERVAL:
            return
        _outage_logged_at = now
    logger.error("API gateway store unavailable (%s); failing %s", where, mode)


def _limit_headers(response, decision: base.Decision) -> None:
    """`RateLimit-Policy` lists every window of the plan as applied (IETF draft-ietf-httpapi-ratelimit-headers:
    name, quota q in units, window w in seconds); `RateLimit` reports the one closest to exhaustion (the one
    that refused, on a 429), r units left, t seconds until it frees up."""
    policies = _policy_header(
        decision.burst_limit, decision.minute_limit, decision.key_limit, decision.monthly_quota,
        base.current_month().seconds,
    )  # fmt: skip
    if policies:
        response["RateLimit-Policy"] = policies
    if decision.limit:
        response["X-RateLimit-Limit"] = str(decision.limit)
    if decision.remaining >= 0 and decision.policy:  # unknown while failing open without Redis
        response["RateLimit"] = f'"{decision.policy}";r={decision.remaining};t={decision.reset_seconds}'
        response["X-RateLimit-Remaining"] = str(decision.remaining)
        response["X-RateLimit-Reset"] = str(int(time.time()) + decision.reset_seconds)


@functools.lru_cache(maxsize=1024)
def _policy_header(burst: int, minute: int, key: int, quota: int, month_seconds: int) -> str:
    """The RateLimit-Policy value of a plan as applied: the same for every request of a tenant (and key), so
    built once per plan."""
    windows = (
        (base.BURST_POLICY, burst, base.BURST_WINDOW_SECONDS),
        (base.MINUTE_POLICY, minute, base.WINDOW_SECONDS),
        (base.KEY_POLICY, key, base.WINDOW_SECONDS),
        (base.MONTH_POLICY, quota, month_seconds),
    )
    return ", ".join(f'"{name}";q={quota};w={window}' for name, quota, window in windows if quota)


def operation_cost(request) -> int:
    """The units a request counts in every window and the quota: its view's `gateway_cost` (set on the
    handler, e.g. a viewset action, or on the view class; default 1). Known before the script call is sent,
    so before Django resolves the URL: resolved here once per path and method (and URL configuration) and
    remembered, as the cost is a property of the route; a bounded cache, so any number of paths is fine."""
    return _route_cost(getattr(request, "urlconf", None) or settings.ROOT_URLCONF, request.path_info, request.method)


@functools.lru_cache(maxsize=4096)
def _route_cost(urlconf: str, path: str, method: str) -> int:
    try:
        view_func = resolve(path, urlconf).func
    except Resolver404:
        return 1
    view_class = getattr(view_func, "cls", None) or getattr(view_func, "view_class", None)
    if view_class is None:
        return getattr(view_func, "gateway_cost", 1)
    actions = getattr(view_func, "actions", None) or {}
    handler = getattr(view_class, actions.get(method.lower()) or method.lower(), None)
    cost = getattr(handler, "gateway_cost", None)
    return int(cost if cost is not None else getattr(view_class, "gateway_cost", 1))


class ApiGatewayMiddleware:
    """Sends the key's script call as the request arrives and applies the decision in `process_view`.

    The Redis round trip runs while the rest of the middleware chain and URL resolution do their work;
    no view runs before the decision is read. A request that never reaches a view (an unknown path, a
    redirect) is decided on the way out, and refused there the same way.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(settings.API_GATEWAY_PATH_PREFIX):
            if request.method == "POST" and request.path == settings.ADMIN_LOGIN_PATH:
                if guard_anonymous(request, group="admin-login", rate=settings.ADMIN_LOGIN_RATE, increment=True):
                    return error_response("rate_limited", "Too many login attempts; try again later.", 429)
            return self.get_response(request)
        raw_key = presented_key(request)
        if raw_key is None:
            return self.get_response(request)
        gate = request._api_gateway = _Gate(raw_key, operation_cost(request))
        try:
            response = self.get_response(request)
        finally:
            refusal = gate.settle(request, self)  # reads the reply if no view asked for it
        if refusal is not None:
            return refusal
        decision = gate.decision
        if decision is None or decision.code != base.OK:
            return response  # refused in process_view: the response is that refusal
        _limit_headers(response, decision)
        latency_ms = int((time.perf_counter() - gate.started) * 1000)
        outcomes.pending.add(key_id=decision.key_id, status_code=response.status_code, latency_ms=latency_ms)
        if outcomes.pending.older_than(outcomes.IDLE_FLUSH_SECONDS):  # an idle process: don't sit on them
            outcomes.flush_pending_outcomes()
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        gate = getattr(request, "_api_gateway", None)
        if gate is None:
            return None
        return gate.settle(request, self)

    def admit(self, request, parsed, pending):
        """Auth -> rate limit -> tenant context: (decision, None) to let the view run, or (decision or
        None, the refusal)."""
        if parsed is None:
            return None, self._failed_authentication(request, base.Decision(base.INVALID), reason="malformed")

        # Failures are limited per client address, valid keys are not: a key is always looked up (a miss
        # costs one indexed query), so a valid key still gets in from an address that has failed many times.
        try:
            decision = pending.result()
        except BackendUnavailable:
            _report_outage("gateway script")
            if settings.API_GATEWAY_FAIL_MODE == "closed":
                response = error_response("gateway_unavailable", "The API gateway is unavailable; try again.", 503)
                response["Retry-After"] = "1"
                return None, response
            try:
                decision = decide_from_database(parsed)
            except DatabaseError:
                logger.error("API gateway: database unavailable during a Redis outage")
                return None, error_response(
                    "service_unavailable", "The service is unavailable; try again shortly.", 503
                )
        if decision.code in (base.INVALID, base.REVOKED, base.EXPIRED):
            return decision, self._failed_authentication(request, decision)
        if decision.code == base.SUSPENDED:
            metrics.record_api_key_auth_failure(reason=_FAILURE_REASONS[decision.code])
            status, code, message = _REFUSALS[decision.code]
            return decision, error_response(code, message, status)
        if decision.code == base.RATE_LIMITED:
            metrics.record_rate_limit_decision(tier=decision.tier, outcome="limited")
            response = error_response(
                "rate_limited",
                f'The usage plan\'s "{decision.policy}" limit of {decision.limit} units is used up; '
                f"retry in {decision.reset_seconds} s.",
                429,
                fields={"policy": [decision.policy]},
            )
            response["Retry-After"] = str(decision.reset_seconds)
            _limit_headers(response, decision)
            return decision, response

        # remaining < 0: served from the database during a Redis outage, no limit applied.
        metrics.record_rate_limit_decision(
            tier=decision.tier, outcome="allowed" if decision.remaining >= 0 else "unchecked"
        )
        request.api_key = ApiKeyContext(
            id=decision.key_id,
            tenant_id=decision.tenant_id,
            prefix=parsed.prefix,
            scopes=frozenset(decision.scopes),
            tier=decision.tier,
            limit=decision.limit,
        )
        request.tenant = _tenant_without_query(decision)
        return decision, None

    def _failed_authentication(self, request, decision, reason: str | None = None):
        metrics.record_api_key_auth_failure(reason=reason or _FAILURE_REASONS[decision.code])
        status, code, message = _REFUSALS[decision.code]
        if decision.key_id:
            logger.info("api key refused: %s id=%s", code, decision.key_id)
        if guard_anonymous(
            request, group="apikey-auth-failure", rate=settings.API_KEY_AUTH_FAILURE_RATE, increment=True
        ):
            response = error_response("rate_limited", "Too many failed authentications; try again later.", 429)
            response["Retry-After"] = "60"
            return response
        response = error_response(code, message, status)
        response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response


class _Gate:
    """One request's key: parsed and its script call sent on arrival, decided once."""

    __slots__ = ("started", "parsed", "pending", "decision", "settled")

    def __init__(self, raw_key: str, cost: int):
        self.started = time.perf_counter()
        self.decision = self.pending = None
        self.settled = False
        try:
            self.parsed = parse_key(raw_key)
        except MalformedKey as exc:
            self.parsed = None
            prefix = raw_key[:9] if raw_key.startswith(KEY_PREFIX + "_") else "unknown"
            logger.info("api key refused before lookup: %s (prefix %s)", exc, prefix)
            return
        self.pending = PendingDecision(self.parsed, cost)

    def settle(self, request, gateway: ApiGatewayMiddleware):
        """The refusal (a response) or None, deciding on the first call only."""
        if self.settled:
            return None
        self.settled = True
        self.decision, refusal = gateway.admit(request, self.parsed, self.pending)
        return refusal


def _tenant_without_query(decision):
    """The key's tenant as a model instance, built on first use (many views only need the key's scopes;
    Django's request.user is lazy the same way); its other fields load only if a view reads them."""
    return SimpleLazyObject(
        lambda: _tenant_model().from_db(
            "default", ["id", "tier", "status"], [uuid.UUID(decision.tenant_id), decision.tier, "active"]
        )
    )


@functools.cache
def _tenant_model():
    from tenants.models import Tenant

    return Tenant
