"""Who may call a view: an API key with the view's scope, or an operator whose role allows the view's action.

A view names, by viewset action or HTTP method, the scope a key needs (`required_scopes`, or
`HasScope("webhooks:manage")` as a permission class) and the permission an operator needs
(`operator_permissions`, checked against the role map of console/roles.py). Both are deny-by-default: a
key on a view that names no scope is refused (operator-only endpoints stay operator-only without saying
so), and so is an operator (a staff session) on an action that names no permission.

An operator's write runs inside `operator_write(view, ...)`: checked again and audited with its reason
(the body's `reason` where the endpoint has one, else the `X-Operator-Reason` header).
"""

import contextlib

from rest_framework.permissions import BasePermission

from console.services import AuditDraft, authorize, operator_action
from core.exceptions import ApplicationError

from .gateway.decision import ApiKeyContext

REASON_HEADER = "X-Operator-Reason"


def api_key_of(request) -> ApiKeyContext | None:
    return request.auth if isinstance(request.auth, ApiKeyContext) else None


def _by_action_or_method(mapping: dict, view, request) -> str | None:
    found = mapping.get(getattr(view, "action", None) or "") or mapping.get(request.method)
    if found is None and request.method in ("HEAD", "OPTIONS"):  # what GET shows, no more
        found = mapping.get("GET")
    return found


def operator_permission(view, request) -> str | None:
    """The permission ("app.codename") an operator needs for this request, or None: no operator may."""
    return _by_action_or_method(getattr(view, "operator_permissions", None) or {}, view, request)


def _unsupported_method(request, view) -> bool:
    method = request.method.lower()
    return method not in view.http_method_names or not hasattr(view, method)


def _check(request, view, scope: str | None) -> bool:
    if _unsupported_method(request, view):
        return True  # DRF answers 405 Method Not Allowed, the same for everyone, whoever asks
    api_key = api_key_of(request)
    if api_key is None:
        return _check_operator(request, view)
    if scope is None:
        raise ApplicationError("operators_only", "This endpoint is for operators only.", status_code=403)
    if not api_key.has_scope(scope):
        raise ApplicationError(
            "insufficient_scope",
            f"This API key lacks the {scope} scope.",
            fields={"scope": [scope]},
            status_code=403,
        )
    return True


def _check_operator(request, view) -> bool:
    user = request.user
    if not (user and user.is_authenticated and user.is_staff):
        return False  # DRF answers 401 without credentials, 403 for a non-staff session
    permission = operator_permission(view, request)
    if permission is None:
        raise ApplicationError("operator_forbidden", "No operator role may call this endpoint.", status_code=403)
    authorize(user, permission)
    return True


class ScopedAccess(BasePermission):
    """Default permission: a key holding the scope the view requires for this action/method, or an
    operator whose role holds the permission the view names for it."""

    def has_permission(self, request, view):
        return _check(request, view, self.required_scope(request, view))

    def required_scope(self, request, view) -> str | None:
        """The scope a key needs (None: operators only); the published API description shows it."""
        return _by_action_or_method(getattr(view, "required_scopes", None) or {}, view, request)


def HasScope(scope: str) -> type[BasePermission]:  # noqa: N802 - reads as a class in permission_classes
    """A permission class requiring one scope of API keys (operators: the view's operator_permissions)."""
    from .scopes import SCOPES

    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    class _HasScope(BasePermission):
        def has_permission(self, request, view):
            return _check(request, view, scope)

        def required_scope(self, request, view) -> str | None:
            return scope

    _HasScope.__name__ = f"HasScope({scope})"
    return _HasScope


class OperatorsOnly(BasePermission):
    def has_permission(self, request, view):
        return _check(request, view, None)

    def required_scope(self, request, view) -> str | None:
        return None


def operator_write(view, *, action: str, target=None, reason: str = "", detail: dict | None = None, also=()):
    """The block of a write: for an operator, checked against the role map (the view's permission and
    `also`) and audited in the block's transaction; for a key (a tenant acting on its own), run as is."""
    request = view.request
    if api_key_of(request) is not None:
        return contextlib.nullcontext(AuditDraft(target=target, detail=dict(detail or {})))
    header = request.headers.get(REASON_HEADER, "")
    return operator_action(
        actor=request.user,
        permissions=(operator_permission(view, request), *also),
        action=action,
        target=target,
        reason=reason or "".join(ch for ch in header if ch.isprintable())[:500],
        detail=detail,
        source="api",
    )
