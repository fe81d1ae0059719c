"""Tenant isolation matrix: every API route and method, with a key of tenant A against tenant B's objects;
and the operator-role dimension: every route with a support user, a platform admin and a staff user
without a role (OPERATOR_CASES).

The routes come from the URL configuration (`api_routes`), so a new endpoint without a line in CASES
fails `test_every_api_route_and_method_has_a_case`. Each case runs twice: with B's ids and with ids
nobody has. The two responses must be identical (status and body), so nothing tells B's objects
exist; for object routes that response is a 404. After every request B's rows are unchanged, and no id
of B's appears in any response.

Adding a case is one line: `("route-name", "METHOD"): hidden("/api/v1/thing/{b.website}/"),`; `{a.…}` and
`{b.…}` name the ids of tests/hardening/conftest.py's `Objects`.
Longer than ~400 lines: the case table is the test, one line a route and method.
"""

import uuid
from dataclasses import dataclass, field, fields

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.hardening.conftest import Objects
from tests.sitebundles import bundle_build, upload_file

API_PREFIX = "api/v1/"
IGNORED_METHODS = {"HEAD", "OPTIONS"}  # HEAD mirrors GET; OPTIONS is metadata


@dataclass(frozen=True)
class Case:
    path: str
    status: int
    body: dict = field(default_factory=dict)
    multipart: bool = False
    # Whether the responses for B's ids and for unknown ids must be identical (not for creations).
    same_as_unknown: bool = True
    # Top-level keys that differ between two calls whatever the ids (e.g. a time window).
    volatile: tuple = ()


def hidden(path: str, body: dict | None = None, *, multipart: bool = False) -> Case:
    """B's object: 404, exactly as for an object that does not exist."""
    return Case(path, 404, body or {}, multipart)


def operators(path: str, body: dict | None = None) -> Case:
    """Operators only: a key is refused the same way whatever the id."""
    return Case(path, 403, body or {})


def same(path: str, status: int, body: dict | None = None, *, volatile: tuple = ()) -> Case:
    """A list, a filter or a reference to B's object in a body: the same answer as for an unknown id."""
    return Case(path, status, body or {}, volatile=volatile)


def own(path: str, status: int, body: dict) -> Case:
    """A creation naming tenant B: acts for A (the key's tenant) or is refused; never touches B."""
    return Case(path, status, body, same_as_unknown=False)


def bundle() -> dict:
    return {"description": "from A", "bundle": upload_file(bundle_build({"index.html": "from A"}))}


V1 = "/api/v1"
CASES: dict[tuple[str, str], Case | tuple[Case, ...]] = {
    ("tenant-list", "GET"): operators(f"{V1}/tenants/?search={{b.tenant}}"),
    ("tenant-list", "POST"): operators(f"{V1}/tenants/", {"name": "x", "slug": "x-from-a"}),
    ("tenant-detail", "GET"): operators(f"{V1}/tenants/{{b.tenant}}/"),
    ("tenant-usage-cost", "GET"): operators(f"{V1}/tenants/{{b.tenant}}/usage-cost/"),
    ("usage-cost-list", "GET"): operators(f"{V1}/usage/costs/"),
    ("tenant-detail", "PATCH"): operators(f"{V1}/tenants/{{b.tenant}}/", {"tier": "free"}),
    ("tenant-suspend", "POST"): operators(f"{V1}/tenants/{{b.tenant}}/suspend/", {"reason": "x"}),
    ("tenant-reactivate", "POST"): operators(f"{V1}/tenants/{{b.tenant}}/reactivate/"),
    ("website-list", "GET"): (
        same(f"{V1}/websites/", 200),
        same(f"{V1}/websites/?tenant={{b.tenant}}", 200),
        same(f"{V1}/websites/?search={{b.website_name}}", 200),
        same(f"{V1}/websites/?hostname={{b.hostname}}", 200),
    ),
    ("website-list", "POST"): own(f"{V1}/websites/", 201, {"tenant": "{b.tenant}", "name": "Made by A"}),
    ("website-detail", "GET"): hidden(f"{V1}/websites/{{b.website}}/"),
    ("website-detail", "PATCH"): hidden(f"{V1}/websites/{{b.website}}/", {"name": "renamed by A"}),
    ("website-detail", "DELETE"): hidden(f"{V1}/websites/{{b.website}}/"),
    ("website-deployments", "GET"): hidden(f"{V1}/websites/{{b.website}}/deployments/?status=pending"),
    ("website-deployments", "POST"): hidden(f"{V1}/websites/{{b.website}}/deployments/", multipart=True),
    ("website-verify-hostname", "POST"): (
        hidden(f"{V1}/websites/{{b.website}}/hostnames/{{b.hostname}}/verify/"),
        same(f"{V1}/websites/{{a.website}}/hostnames/{{b.hostname}}/verify/", 404),
    ),
    ("website-rollback", "POST"): (
        hidden(f"{V1}/websites/{{b.website}}/rollback/", {}),
        same(f"{V1}/websites/{{a.website}}/rollback/", 400, {"deployment": "{b.deployment}"}),
    ),
    ("deployment-detail", "GET"): hidden(f"{V1}/deployments/{{b.deployment}}/"),
    ("apikey-list", "GET"): same(f"{V1}/keys/", 200),
    ("apikey-list", "POST"): own(f"{V1}/keys/", 201, {"tenant": "{b.tenant}", "name": "k", "scopes": ["usage:read"]}),
    ("apikey-detail", "GET"): hidden(f"{V1}/keys/{{b.key}}/"),
    ("apikey-revoke", "POST"): hidden(f"{V1}/keys/{{b.key}}/revoke/", {"reason": "A revokes"}),
    ("apikey-rotate", "POST"): hidden(f"{V1}/keys/{{b.key}}/rotate/", {"grace_seconds": 0}),
    ("usage", "GET"): same(f"{V1}/usage/?tenant={{b.tenant}}", 200, volatile=("from", "to")),
    ("website-invalidations", "GET"): hidden(f"{V1}/websites/{{b.website}}/invalidations/"),
    ("website-invalidations", "POST"): hidden(f"{V1}/websites/{{b.website}}/invalidations/", {"paths": ["/", "/a"]}),
    ("website-invalidation", "GET"): hidden(f"{V1}/websites/{{b.website}}/invalidations/{{b.invalidation}}/"),
    ("website-cdn", "GET"): hidden(f"{V1}/websites/{{b.website}}/cdn/"),
    ("website-cdn", "PATCH"): operators(f"{V1}/websites/{{b.website}}/cdn/", {"cdn_config": {}}),
    ("webhook-endpoint-list", "GET"): same(f"{V1}/webhooks/endpoints/?is_active=true", 200),
    ("webhook-endpoint-list", "POST"): own(
        f"{V1}/webhooks/endpoints/", 201, {"tenant": "{b.tenant}", "url": "http://127.0.0.1:9/a", "event_types": ["*"]}
    ),
    ("webhook-endpoint-detail", "GET"): hidden(f"{V1}/webhooks/endpoints/{{b.endpoint}}/"),
    ("webhook-endpoint-detail", "PATCH"): hidden(f"{V1}/webhooks/endpoints/{{b.endpoint}}/", {"is_active": False}),
    ("webhook-endpoint-detail", "DELETE"): hidden(f"{V1}/webhooks/endpoints/{{b.endpoint}}/"),
    ("webhook-endpoint-rotate-secret", "POST"): hidden(f"{V1}/webhooks/endpoints/{{b.endpoint}}/rotate-secret/"),
    ("webhook-endpoint-ping", "POST"): hidden(f"{V1}/webhooks/endpoints/{{b.endpoint}}/ping/"),
    ("webhook-endpoint-deliveries", "GET"): hidden(f"{V1}/webhooks/endpoints/{{b.endpoint}}/deliveries/?status=failed"),
    ("webhook-endpoint-replay", "POST"): hidden(
        f"{V1}/webhooks/endpoints/{{b.endpoint}}/replay/", {"since": "2000-01-01T00:00:00Z"}
    ),
    ("webhook-delivery-list", "GET"): (
        same(f"{V1}/webhooks/deliveries/?status=failed", 200),
        same(f"{V1}/webhooks/deliveries/?endpoint={{b.endpoint}}", 200),
    ),
    ("webhook-delivery-detail", "GET"): hidden(f"{V1}/webhooks/deliveries/{{b.delivery}}/"),
    ("webhook-delivery-redeliver", "POST"): hidden(f"{V1}/webhooks/deliveries/{{b.delivery}}/redeliver/"),
    ("webhook-event-type-list", "GET"): same(f"{V1}/webhooks/event-types/", 200),
    ("webhook-signing-key-list", "GET"): same(f"{V1}/webhooks/keys/?endpoint={{b.endpoint}}", 200),
}


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


def _methods(callback) -> set[str]:
    view_class = getattr(callback, "cls", None)
    if view_class is None:  # a plain Django view under the API: every method it may answer
        return {"GET", "POST", "PUT", "PATCH", "DELETE"}
    allowed = {name.upper() for name in view_class.http_method_names}
    actions = getattr(callback, "actions", None)
    if actions is not None:  # a viewset route: the router's method -> action mapping
        methods = {method.upper() for method, action in actions.items() if hasattr(view_class, action)}
    else:
        methods = {name.upper() for name in view_class.http_method_names if hasattr(view_class, name)}
    return (methods & allowed) - IGNORED_METHODS


def api_routes() -> set[tuple[str, str]]:
    """(URL name, method) of every route under /api/v1/, from the URL configuration."""
    routes = set()
    for route, pattern in _walk(get_resolver().url_patterns):
        if not route.lstrip("^").startswith(API_PREFIX):
            continue
        assert pattern.name, f"API route {route} has no name: name it so the matrix can list it"
        routes.update((pattern.name, method) for method in _methods(pattern.callback))
    return routes


def test_every_api_route_and_method_has_a_case():
    routes = api_routes()
    missing = sorted(routes - set(CASES))
    stale = sorted(set(CASES) - routes)
    assert not missing, f"API routes without an isolation case (add one line each to CASES): {missing}"
    assert not stale, f"isolation cases for routes that no longer exist: {stale}"
    assert len(routes) >= 35  # the generator sees the whole API, not an empty resolver


def _unknown_ids() -> Objects:
    return Objects(**{f.name: str(uuid.uuid4()) for f in fields(Objects)})


def _snapshot(tenant_id: str) -> list:
    """Everything of tenant B an API request could change."""
    from apikeys.models import ApiKey
    from cdn.models import Invalidation
    from tenants.models import Deployment, Hostname, Tenant, Website
    from webhooks.models import Delivery, Endpoint, Event

    return [
        list(Tenant.objects.filter(pk=tenant_id).values()),
        list(Website.objects.filter(tenant_id=tenant_id).order_by("pk").values()),
        list(Hostname.objects.filter(website__tenant_id=tenant_id).order_by("pk").values()),
        list(Deployment.objects.filter(website__tenant_id=tenant_id).order_by("pk").values()),
        list(ApiKey.objects.filter(tenant_id=tenant_id).order_by("pk").values()),
        list(Endpoint.objects.filter(tenant_id=tenant_id).order_by("pk").values()),
        list(Delivery.objects.filter(endpoint__tenant_id=tenant_id).order_by("pk").values()),
        list(Event.objects.filter(tenant_id=tenant_id).order_by("pk").values()),
        list(Invalidation.objects.filter(website__tenant_id=tenant_id).order_by("pk").values()),
    ]


def _request(client, method: str, case: Case, a: Objects, b: Objects):
    path = case.path.format(a=a, b=b)
    if case.multipart:
        return getattr(client, method.lower())(path, bundle(), format="multipart")
    body = {key: value.format(a=a, b=b) if isinstance(value, str) else value for key, value in case.body.items()}
    return getattr(client, method.lower())(path, body or None, format="json")


def _without(body, keys: tuple):
    return {k: v for k, v in body.items() if k not in keys} if isinstance(body, dict) else body


def _cases():
    for (name, method), cases in sorted(CASES.items()):
        for index, case in enumerate(cases if isinstance(cases, tuple) else (cases,)):
            yield pytest.param(method, case, id=f"{method}-{name}-{index}")


@pytest.mark.parametrize(("method", "case"), list(_cases()))
def test_key_of_tenant_a_cannot_see_or_touch_tenant_b(method, case, two_tenants):
    from rest_framework.test import APIClient

    a, b, raw_key = two_tenants
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    before = _snapshot(b.tenant)

    response = _request(client, method, case, a, b)
    assert response.status_code == case.status, response.content
    body = response.content.decode()
    leaked = [
        f.name for f in fields(Objects) if f.name not in ("hostname", "website_name") and getattr(b, f.name) in body
    ]
    assert not leaked, f"ids of tenant B in the response: {leaked}: {body[:500]}"
    assert b.hostname not in body and b.website_name not in body
    if case.status >= 400:
        assert set(response.json()) == {"error"}, body

    if case.same_as_unknown:
        unknown = _request(client, method, case, a, _unknown_ids())
        stable = [_without(r.json(), case.volatile) for r in (response, unknown)]
        assert (unknown.status_code, stable[1]) == (response.status_code, stable[0]), (
            "the answer for B's ids differs from the answer for ids nobody has: existence leaks"
        )
    assert _snapshot(b.tenant) == before, "a request with A's key changed tenant B's data"


def test_a_websites_deployments_filter_by_deployment_status(two_tenants):
    """Regression: the website list's filters were applied to this nested route, so ?status=pending was
    refused as an invalid website status."""
    from rest_framework.test import APIClient

    a, _, raw_key = two_tenants
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    pending = client.get(f"{V1}/websites/{a.website}/deployments/?status=pending")
    assert pending.status_code == 200, pending.content
    assert [d["id"] for d in pending.json()["results"]] == [a.deployment]
    assert client.get(f"{V1}/websites/{a.website}/deployments/?status=succeeded").json()["count"] == 0
    # The website's own status filter still works on the list.
    assert client.get(f"{V1}/websites/?status=disabled").json()["count"] == 0
    assert client.get(f"{V1}/websites/?tenant={a.tenant}").json()["count"] == 1


# --- the operator-role dimension ---------------------------------------------------------------------
# Every route and method once more, called by operators (staff sessions) on tenant B's objects: what the
# role map (console/roles.py) lets each role do. VIEW: every role with a role; REDELIVER: support too;
# ADMIN: platform admins only. A staff user without a role may do nothing; a refused call changes
# nothing and writes no audit entry; every write that is let through is in the audit log.
VIEW, REDELIVER, ADMIN = "view", "redeliver", "admin"


@dataclass(frozen=True)
class OperatorCase:
    path: str
    allowed: str  # VIEW, REDELIVER or ADMIN
    status: int  # the answer when the role may (a service may still refuse: 409, the same for every role)
    body: dict = field(default_factory=dict)
    multipart: bool = False


def op(path: str, allowed: str, status: int, body: dict | None = None, *, multipart: bool = False) -> OperatorCase:
    return OperatorCase(path, allowed, status, body or {}, multipart)


OPERATOR_CASES: dict[tuple[str, str], OperatorCase] = {
    ("tenant-list", "GET"): op(f"{V1}/tenants/?search={{b.tenant}}", VIEW, 200),
    ("tenant-list", "POST"): op(f"{V1}/tenants/", ADMIN, 201, {"name": "Made by ops", "slug": "made-by-ops"}),
    ("tenant-detail", "GET"): op(f"{V1}/tenants/{{b.tenant}}/", VIEW, 200),
    ("tenant-detail", "PATCH"): op(f"{V1}/tenants/{{b.tenant}}/", ADMIN, 200, {"tier": "enterprise"}),
    ("tenant-usage-cost", "GET"): op(f"{V1}/tenants/{{b.tenant}}/usage-cost/", VIEW, 200),
    ("usage-cost-list", "GET"): op(f"{V1}/usage/costs/", VIEW, 200),
    ("tenant-suspend", "POST"): op(f"{V1}/tenants/{{b.tenant}}/suspend/", ADMIN, 200, {"reason": "abuse"}),
    ("tenant-reactivate", "POST"): op(f"{V1}/tenants/{{b.tenant}}/reactivate/", ADMIN, 409),  # it is active
    ("website-list", "GET"): op(f"{V1}/websites/?tenant={{b.tenant}}", VIEW, 200),
    ("website-list", "POST"): op(f"{V1}/websites/", ADMIN, 201, {"tenant": "{b.tenant}", "name": "Ops site"}),
    ("website-detail", "GET"): op(f"{V1}/websites/{{b.website}}/", VIEW, 200),
    ("website-detail", "PATCH"): op(f"{V1}/websites/{{b.website}}/", ADMIN, 200, {"name": "renamed by ops"}),
    ("website-detail", "DELETE"): op(f"{V1}/websites/{{b.website}}/", ADMIN, 204),
    ("website-deployments", "GET"): op(f"{V1}/websites/{{b.website}}/deployments/", VIEW, 200),
    ("website-deployments", "POST"): op(f"{V1}/websites/{{b.website}}/deployments/", ADMIN, 201, multipart=True),
    ("website-verify-hostname", "POST"): op(
        f"{V1}/websites/{{b.website}}/hostnames/{{b.hostname}}/verify/", VIEW, 200
    ),  # a DNS lookup: what it finds is the tenant's doing
    ("website-rollback", "POST"): op(f"{V1}/websites/{{b.website}}/rollback/", ADMIN, 409),  # nothing live yet
    ("deployment-detail", "GET"): op(f"{V1}/deployments/{{b.deployment}}/", VIEW, 200),
    ("apikey-list", "GET"): op(f"{V1}/keys/", VIEW, 200),
    ("apikey-list", "POST"): op(
        f"{V1}/keys/", ADMIN, 201, {"tenant": "{b.tenant}", "name": "k", "scopes": ["usage:read"]}
    ),
    ("apikey-detail", "GET"): op(f"{V1}/keys/{{b.key}}/", VIEW, 200),
    ("apikey-revoke", "POST"): op(f"{V1}/keys/{{b.key}}/revoke/", ADMIN, 200, {"reason": "leaked"}),
    ("apikey-rotate", "POST"): op(f"{V1}/keys/{{b.key}}/rotate/", ADMIN, 201, {"grace_seconds": 0}),
    ("usage", "GET"): op(f"{V1}/usage/?tenant={{b.tenant}}", VIEW, 200),
    ("website-invalidations", "GET"): op(f"{V1}/websites/{{b.website}}/invalidations/", VIEW, 200),
    ("website-invalidation", "GET"): op(f"{V1}/websites/{{b.website}}/invalidations/{{b.invalidation}}/", VIEW, 200),
    ("website-invalidations", "POST"): op(f"{V1}/websites/{{b.website}}/invalidations/", ADMIN, 202, {"paths": ["/"]}),
    ("website-cdn", "GET"): op(f"{V1}/websites/{{b.website}}/cdn/", VIEW, 200),
    ("website-cdn", "PATCH"): op(f"{V1}/websites/{{b.website}}/cdn/", ADMIN, 200, {"cdn_config": {"zone_id": "z1"}}),
    ("webhook-endpoint-list", "GET"): op(f"{V1}/webhooks/endpoints/", VIEW, 200),
    ("webhook-endpoint-list", "POST"): op(
        f"{V1}/webhooks/endpoints/",
        ADMIN,
        201,
        {"tenant": "{b.tenant}", "url": "http://127.0.0.1:9/ops", "event_types": ["*"]},
    ),  # fmt: skip
    ("webhook-endpoint-detail", "GET"): op(f"{V1}/webhooks/endpoints/{{b.endpoint}}/", VIEW, 200),
    ("webhook-endpoint-detail", "PATCH"): op(
        f"{V1}/webhooks/endpoints/{{b.endpoint}}/", ADMIN, 200, {"description": "set by ops"}
    ),
    ("webhook-endpoint-detail", "DELETE"): op(f"{V1}/webhooks/endpoints/{{b.endpoint}}/", ADMIN, 204),
    ("webhook-endpoint-rotate-secret", "POST"): op(
        f"{V1}/webhooks/endpoints/{{b.endpoint}}/rotate-secret/", ADMIN, 200
    ),
    ("webhook-endpoint-ping", "POST"): op(f"{V1}/webhooks/endpoints/{{b.endpoint}}/ping/", REDELIVER, 202),
    ("webhook-endpoint-deliveries", "GET"): op(f"{V1}/webhooks/endpoints/{{b.endpoint}}/deliveries/", VIEW, 200),
    ("webhook-endpoint-replay", "POST"): op(
        f"{V1}/webhooks/endpoints/{{b.endpoint}}/replay/", REDELIVER, 202, {"since": "2000-01-01T00:00:00Z"}
    ),
    ("webhook-delivery-list", "GET"): op(f"{V1}/webhooks/deliveries/?endpoint={{b.endpoint}}", VIEW, 200),
    ("webhook-delivery-detail", "GET"): op(f"{V1}/webhooks/deliveries/{{b.delivery}}/", VIEW, 200),
    ("webhook-delivery-redeliver", "POST"): op(f"{V1}/webhooks/deliveries/{{b.delivery}}/redeliver/", REDELIVER, 202),
    ("webhook-event-type-list", "GET"): op(f"{V1}/webhooks/event-types/", VIEW, 200),
    ("webhook-signing-key-list", "GET"): op(f"{V1}/webhooks/keys/?endpoint={{b.endpoint}}", VIEW, 200),
}
ROLES = {"support": (VIEW, REDELIVER), "platform admins": (VIEW, REDELIVER, ADMIN), None: ()}


def test_every_api_route_and_method_has_an_operator_case():
    routes = api_routes()
    assert sorted(routes - set(OPERATOR_CASES)) == [], "API routes without an operator-role case"
    assert sorted(set(OPERATOR_CASES) - routes) == [], "operator-role cases for routes that no longer exist"


def _operator_cases():
    for (name, method), case in sorted(OPERATOR_CASES.items()):
        for role in ROLES:
            yield pytest.param(method, case, role, id=f"{method}-{name}-{role or 'no-role'}")


def _everything(a: Objects, b: Objects) -> list:
    from tenants.models import Tenant

    return [_snapshot(a.tenant), _snapshot(b.tenant), list(Tenant.objects.order_by("pk").values_list("pk", "tier"))]


@pytest.mark.parametrize(("method", "case", "role"), list(_operator_cases()))
def test_operator_roles_over_every_operator_endpoint(method, case, role, two_tenants, django_user_model):
    from django.contrib.auth.models import Group
    from rest_framework.test import APIClient

    from console.models import AuditLogEntry

    a, b, _ = two_tenants
    user = django_user_model.objects.create_user(username="op-under-test", password="op-pass-1234", is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    client = APIClient()
    client.force_login(user)
    before = _everything(a, b)

    path = case.path.format(a=a, b=b)
    if case.multipart:
        response = getattr(client, method.lower())(path, bundle(), format="multipart")
    else:
        body = {k: v.format(a=a, b=b) if isinstance(v, str) else v for k, v in case.body.items()}
        response = getattr(client, method.lower())(path, body or None, format="json")

    entries = list(AuditLogEntry.objects.values_list("action", "actor_username", "source", "outcome"))
    if case.allowed not in ROLES[role]:
        assert response.status_code == 403, response.content
        assert response.json()["error"]["code"] == "operator_forbidden"
        assert _everything(a, b) == before, "a refused operator call changed data"
        assert entries == [], "a call refused by the role map is not an action"
        return
    assert response.status_code == case.status, response.content
    if method == "GET":
        assert entries == []
        return
    ((action, actor, source, outcome),) = entries  # every write let through is audited, once
    assert (actor, source) == ("op-under-test", "api") and action.split(".")[0] in {
        "tenant", "website", "hostname", "deployment", "apikey", "endpoint", "delivery",
    }  # fmt: skip
    assert outcome == ("refused" if case.status == 409 else "done")


def test_a_staff_user_without_a_role_may_do_exactly_what_it_is_granted(two_tenants, django_user_model):
    from django.contrib.auth.models import Permission
    from rest_framework.test import APIClient

    a, b, _ = two_tenants
    user = django_user_model.objects.create_user(username="granted", password="granted-pass-1", is_staff=True)
    user.user_permissions.add(Permission.objects.get(content_type__app_label="tenants", codename="view_tenant"))
    client = APIClient()
    client.force_login(user)
    assert client.get(f"{V1}/tenants/{b.tenant}/").status_code == 200
    assert client.get(f"{V1}/websites/{b.website}/").status_code == 403
    assert client.post(f"{V1}/tenants/{b.tenant}/suspend/", {"reason": "x"}, format="json").status_code == 403
