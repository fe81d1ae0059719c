"""Who may call a view: operators (staff sessions) always; an API key only with the view's scope.

A view names its scopes with `required_scopes` (by viewset action or HTTP method), or uses
`HasScope("webhooks:manage")` as a permission class. A key on a view that names no scope is refused:
operator-only endpoints stay operator-only without saying so.
"""

from rest_framework.permissions import BasePermission

from platform_site.exceptions import ApplicationError

from .gateway import ApiKeyContext


def api_key_of(request) -> ApiKeyContext | None:
    return request.auth if isinstance(request.auth, ApiKeyContext) else None


def _check(request, scope: str | None) -> bool:
    api_key = api_key_of(request)
    if api_key is None:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)
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


class ScopedAccess(BasePermission):
    """Default permission: staff, or a key holding the scope the view requires for this action/method."""

    def has_permission(self, request, view):
        scopes = getattr(view, "required_scopes", None) or {}
        scope = scopes.get(getattr(view, "action", None) or "") or scopes.get(request.method)
        return _check(request, scope)


def HasScope(scope: str) -> type[BasePermission]:  # noqa: N802 - reads as a class in permission_classes
    """A permission class requiring one scope of API keys (staff pass)."""
    from .scopes import SCOPES

    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    class _HasScope(BasePermission):
        def has_permission(self, request, view):
            return _check(request, scope)

    _HasScope.__name__ = f"HasScope({scope})"
    return _HasScope


class OperatorsOnly(BasePermission):
    def has_permission(self, request, view):
        return _check(request, None)
