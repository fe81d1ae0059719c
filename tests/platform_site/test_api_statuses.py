"""Every status code the published API description documents can occur: for each operation and each
documented response status there is a concrete request (STATUS_CASES, keyed by (method, path, status))
that gets exactly that status, in the one error shape for a 4xx/5xx.

A status documented without a case fails `test_every_documented_status_has_a_case`; a case whose request
gets another status fails `test_every_documented_status_occurs`. When a status cannot occur, the fix is
the schema (drop it), never a contrived case; a status that occurs without being documented is found by
the live Schemathesis run (tests/hardening/test_schemathesis_live.py, status_code_conformance).

What the gateway and the permission layer do for every route (401 without a key, 403 for a key without
the scope or on an operators' route, 429 over the limit, 503 with the gateway store down and failing
closed), the body limit for every method that carries a body (413) and an unknown id (404) are built
by GENERIC cases; what depends on the operation (its success, its 400, its 409, a page past the end) is
written out below, one line each.

Longer than ~400 lines: the case table is the test, one line a documented status.
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.db import transaction
from django.test import override_settings

from tests.hardening.conftest import tenant_with_everything
from tests.helpers import stack

pytestmark = pytest.mark.django_db

V1 = "/api/v1"
UNKNOWN = "00000000-0000-4000-8000-000000000000"


@dataclass
class Call:
    """One request: who sends it (`key`: tenant A's key with every scope; `narrow`: a key of A lacking the
    operation's scope; `limited`: a key of A over its limit; `operator`: a platform admin's session;
    `anonymous`: no credentials), what, and anything to arrange first inside the case's savepoint."""

    caller: str
    method: str
    path: str
    body: object = None  # dict/list: JSON; bytes: raw JSON; "bundle": a multipart upload
    setup: Callable | None = None
    settings: dict = field(default_factory=dict)
    content_type: str = "application/json"  # of a raw (bytes) body


@dataclass
class World:
    """Tenant A's objects (ids as strings), and a second, suspended tenant."""

    tenant: str
    slug: str
    website: str
    website_name: str
    hostname: str
    deployment: str
    endpoint: str
    delivery: str
    key: str
    revoked_key: str
    invalidation: str
    suspended_tenant: str


# --- the path parameters of every operation ------------------------------------------------------------

_OBJECT_OF_PATH = (
    (r"^/api/v1/websites/\{(id|website_id)\}", "website"),
    (r"^/api/v1/deployments/\{id\}", "deployment"),
    (r"^/api/v1/keys/\{id\}", "key"),
    (r"^/api/v1/tenants/\{(id|tenant_id)\}", "tenant"),
    (r"^/api/v1/webhooks/endpoints/\{id\}", "endpoint"),
    (r"^/api/v1/webhooks/deliveries/\{id\}", "delivery"),
)


def concrete(template: str, w: World, **values: str) -> str:
    """The template with tenant A's objects in its parameters (`values` override one by name)."""
    path = template
    for pattern, name in _OBJECT_OF_PATH:
        match = re.match(pattern, template)
        if match:
            param = match.group(1) if match.groups() else "id"
            path = path.replace("{" + param + "}", values.get(param, getattr(w, name)))
    path = path.replace("{invalidation_id}", values.get("invalidation_id", w.invalidation))
    path = path.replace("{hostname}", values.get("hostname", w.hostname))
    assert "{" not in path, f"no object for a parameter of {template}: add it to _OBJECT_OF_PATH"
    return path


def _first_param(template: str) -> str:
    return re.search(r"\{(\w+)\}", template).group(1)


# --- the cases written out ---------------------------------------------------------------------------


def _key(method, template, body=None, **values):
    return lambda w: Call("key", method, concrete(template, w, **values), body)


def _op(method, template, body=None, **values):
    return lambda w: Call("operator", method, concrete(template, w, **values), body)


def _with(call_builder, *, setup=None, **settings):
    def build(w):
        call = call_builder(w)
        call.setup = (lambda: setup(w)) if setup else None
        call.settings = settings
        return call

    return build


def _suspend(tenant_id):
    from tenants import services
    from tenants.models import Tenant

    services.tenant_suspend(tenant=Tenant.objects.get(pk=tenant_id), reason="status case")


def _website_disabled(w):
    from tenants import services
    from tenants.models import Website

    services.website_update(website=Website.objects.get(pk=w.website), status="disabled")


def _endpoint_disabled(w):
    from webhooks.models import Endpoint

    Endpoint.objects.filter(pk=w.endpoint).update(is_active=False)


def _second_website(w):
    from tenants import services
    from tenants.models import Tenant

    services.website_create(tenant=Tenant.objects.get(pk=w.tenant), name="Second site", hostnames=[])


def _website_without_deployments(w):
    from tenants.models import Deployment, Website

    Website.objects.filter(pk=w.website).update(active_deployment=None)
    Deployment.objects.filter(website_id=w.website).delete()


EXPLICIT: dict[tuple[str, str, int], Callable[[World], Call]] = {
    # Tenants (operators)
    ("GET", "/api/v1/tenants/", 200): _op("GET", "/api/v1/tenants/?tier=enterprise"),
    ("GET", "/api/v1/tenants/", 400): _op("GET", "/api/v1/tenants/?tier=platinum"),
    ("GET", "/api/v1/tenants/", 404): _op("GET", "/api/v1/tenants/?page=99"),
    ("POST", "/api/v1/tenants/", 201): _op("POST", "/api/v1/tenants/", {"name": "New", "slug": "new-co"}),
    ("POST", "/api/v1/tenants/", 400): _op("POST", "/api/v1/tenants/", {"name": "New", "slug": "not a slug"}),
    ("POST", "/api/v1/tenants/", 409): lambda w: Call("operator", "POST", f"{V1}/tenants/", {"name": "x", "slug": w.slug}),
    ("GET", "/api/v1/tenants/{id}/", 200): _op("GET", "/api/v1/tenants/{id}/"),
    ("PATCH", "/api/v1/tenants/{id}/", 200): _op("PATCH", "/api/v1/tenants/{id}/", {"name": "Renamed"}),
    ("PATCH", "/api/v1/tenants/{id}/", 400): _op("PATCH", "/api/v1/tenants/{id}/", {"tier": "platinum"}),
    ("POST", "/api/v1/tenants/{id}/suspend/", 200): _op("POST", "/api/v1/tenants/{id}/suspend/", {"reason": "unpaid"}),
    ("POST", "/api/v1/tenants/{id}/suspend/", 400): _op("POST", "/api/v1/tenants/{id}/suspend/", {}),
    ("POST", "/api/v1/tenants/{id}/suspend/", 409): lambda w: _op(
        "POST", "/api/v1/tenants/{id}/suspend/", {"reason": "again"}, id=w.suspended_tenant
    )(w),
    ("POST", "/api/v1/tenants/{id}/reactivate/", 200): lambda w: _op(
        "POST", "/api/v1/tenants/{id}/reactivate/", id=w.suspended_tenant
    )(w),
    ("POST", "/api/v1/tenants/{id}/reactivate/", 409): _op("POST", "/api/v1/tenants/{id}/reactivate/"),
    ("GET", "/api/v1/tenants/{tenant_id}/usage-cost/", 200): _op("GET", "/api/v1/tenants/{tenant_id}/usage-cost/"),
    ("GET", "/api/v1/usage/costs/", 200): _op("GET", "/api/v1/usage/costs/"),
    ("GET", "/api/v1/usage/costs/", 400): _op("GET", "/api/v1/usage/costs/?page_size=0"),
    ("GET", "/api/v1/usage/costs/", 404): _op("GET", "/api/v1/usage/costs/?page=99"),
    # Usage
    ("GET", "/api/v1/usage/", 200): _key("GET", "/api/v1/usage/?minutes=60"),
    ("GET", "/api/v1/usage/", 400): _key("GET", "/api/v1/usage/?minutes=0"),
    # API keys
    ("GET", "/api/v1/keys/", 200): _key("GET", "/api/v1/keys/"),
    ("GET", "/api/v1/keys/", 400): _key("GET", "/api/v1/keys/?page=abc"),
    ("GET", "/api/v1/keys/", 404): _key("GET", "/api/v1/keys/?page=99"),
    ("POST", "/api/v1/keys/", 201): _key("POST", "/api/v1/keys/", {"name": "new", "scopes": ["usage:read"]}),
    ("POST", "/api/v1/keys/", 400): _key("POST", "/api/v1/keys/", {"name": "new", "scopes": ["root"]}),
    ("POST", "/api/v1/keys/", 409): _with(
        _key("POST", "/api/v1/keys/", {"name": "one too many", "scopes": ["usage:read"]}), API_KEY_MAX_ACTIVE_PER_TENANT=1
    ),
    ("GET", "/api/v1/keys/{id}/", 200): _key("GET", "/api/v1/keys/{id}/"),
    ("POST", "/api/v1/keys/{id}/revoke/", 200): _key("POST", "/api/v1/keys/{id}/revoke/", {"reason": "leaked"}),
    ("POST", "/api/v1/keys/{id}/revoke/", 400): _key("POST", "/api/v1/keys/{id}/revoke/", {"reason": 7}),
    ("POST", "/api/v1/keys/{id}/revoke/", 409): lambda w: _key(
        "POST", "/api/v1/keys/{id}/revoke/", {"reason": "again"}, id=w.revoked_key
    )(w),
    ("POST", "/api/v1/keys/{id}/rotate/", 201): _key("POST", "/api/v1/keys/{id}/rotate/", {"grace_seconds": 0}),
    ("POST", "/api/v1/keys/{id}/rotate/", 400): _key("POST", "/api/v1/keys/{id}/rotate/", {"grace_seconds": -1}),
    ("POST", "/api/v1/keys/{id}/rotate/", 409): lambda w: _key(
        "POST", "/api/v1/keys/{id}/rotate/", {"grace_seconds": 0}, id=w.revoked_key
    )(w),
    # Websites
    ("GET", "/api/v1/websites/", 200): _key("GET", "/api/v1/websites/?status=active"),
    ("GET", "/api/v1/websites/", 400): _key("GET", "/api/v1/websites/?status=gone"),
    ("GET", "/api/v1/websites/", 404): _key("GET", "/api/v1/websites/?page=99"),
    ("POST", "/api/v1/websites/", 201): _key("POST", "/api/v1/websites/", {"name": "New", "hostnames": ["www.new.test"]}),
    ("POST", "/api/v1/websites/", 400): _key("POST", "/api/v1/websites/", {"name": "New", "hostnames": ["not a host"]}),
    ("POST", "/api/v1/websites/", 409): lambda w: Call("key", "POST", f"{V1}/websites/", {"name": w.website_name}),
    ("GET", "/api/v1/websites/{id}/", 200): _key("GET", "/api/v1/websites/{id}/"),
    ("PATCH", "/api/v1/websites/{id}/", 200): _key("PATCH", "/api/v1/websites/{id}/", {"name": "Renamed"}),
    ("PATCH", "/api/v1/websites/{id}/", 400): _key("PATCH", "/api/v1/websites/{id}/", {"status": "gone"}),
    ("PATCH", "/api/v1/websites/{id}/", 409): _with(
        _key("PATCH", "/api/v1/websites/{id}/", {"name": "Second site"}), setup=_second_website
    ),
    ("DELETE", "/api/v1/websites/{id}/", 204): _key("DELETE", "/api/v1/websites/{id}/"),
    ("GET", "/api/v1/websites/{id}/deployments/", 200): _key("GET", "/api/v1/websites/{id}/deployments/?status=succeeded"),
    ("GET", "/api/v1/websites/{id}/deployments/", 400): _key("GET", "/api/v1/websites/{id}/deployments/?trigger=x"),
    ("POST", "/api/v1/websites/{id}/deployments/", 201): _key("POST", "/api/v1/websites/{id}/deployments/", "bundle"),
    ("POST", "/api/v1/websites/{id}/deployments/", 400): _key(
        "POST", "/api/v1/websites/{id}/deployments/", {"description": "no bundle"}
    ),
    ("POST", "/api/v1/websites/{id}/deployments/", 409): _with(
        _key("POST", "/api/v1/websites/{id}/deployments/", "bundle"), setup=_website_disabled
    ),
    ("POST", "/api/v1/websites/{id}/hostnames/{hostname}/verify/", 200): _key(
        "POST", "/api/v1/websites/{id}/hostnames/{hostname}/verify/"
    ),
    ("POST", "/api/v1/websites/{id}/rollback/", 201): _key("POST", "/api/v1/websites/{id}/rollback/", {}),
    ("POST", "/api/v1/websites/{id}/rollback/", 400): _key(
        "POST", "/api/v1/websites/{id}/rollback/", {"deployment": UNKNOWN}
    ),
    ("POST", "/api/v1/websites/{id}/rollback/", 409): _with(
        _key("POST", "/api/v1/websites/{id}/rollback/", {}), setup=_website_without_deployments
    ),
    ("GET", "/api/v1/deployments/{id}/", 200): _key("GET", "/api/v1/deployments/{id}/"),
    # CDN
    ("GET", "/api/v1/websites/{website_id}/cdn/", 200): _key("GET", "/api/v1/websites/{website_id}/cdn/"),
    ("PATCH", "/api/v1/websites/{website_id}/cdn/", 200): _op(
        "PATCH", "/api/v1/websites/{website_id}/cdn/", {"cache_overrides": {"html": "no-cache"}}
    ),
    ("PATCH", "/api/v1/websites/{website_id}/cdn/", 400): _op(
        "PATCH", "/api/v1/websites/{website_id}/cdn/", {"cdn_backend": "nowhere"}
    ),
    ("GET", "/api/v1/websites/{website_id}/invalidations/", 200): _key(
        "GET", "/api/v1/websites/{website_id}/invalidations/?status=pending"
    ),
    ("GET", "/api/v1/websites/{website_id}/invalidations/", 400): _key(
        "GET", "/api/v1/websites/{website_id}/invalidations/?status=gone"
    ),
    ("POST", "/api/v1/websites/{website_id}/invalidations/", 202): _key(
        "POST", "/api/v1/websites/{website_id}/invalidations/", {"paths": ["/about/"]}
    ),
    ("POST", "/api/v1/websites/{website_id}/invalidations/", 400): _key(
        "POST", "/api/v1/websites/{website_id}/invalidations/", {"paths": ["no-slash"]}
    ),
    ("GET", "/api/v1/websites/{website_id}/invalidations/{invalidation_id}/", 200): _key(
        "GET", "/api/v1/websites/{website_id}/invalidations/{invalidation_id}/"
    ),
    # Webhooks
    ("GET", "/api/v1/webhooks/endpoints/", 200): _key("GET", "/api/v1/webhooks/endpoints/?is_active=true"),
    ("GET", "/api/v1/webhooks/endpoints/", 400): _key("GET", "/api/v1/webhooks/endpoints/?ordering=secret"),
    ("GET", "/api/v1/webhooks/endpoints/", 404): _key("GET", "/api/v1/webhooks/endpoints/?page=99"),
    ("POST", "/api/v1/webhooks/endpoints/", 201): _key(
        "POST", "/api/v1/webhooks/endpoints/", {"url": "http://127.0.0.1:9/new", "event_types": ["*"]}
    ),
    ("POST", "/api/v1/webhooks/endpoints/", 400): _key(
        "POST", "/api/v1/webhooks/endpoints/", {"url": "http://127.0.0.1:9/new", "event_types": ["no.such"]}
    ),
    ("POST", "/api/v1/webhooks/endpoints/", 409): _with(
        _key("POST", "/api/v1/webhooks/endpoints/", {"url": "http://127.0.0.1:9/new", "event_types": ["*"]}),
        WEBHOOKS_MAX_ENDPOINTS_PER_TENANT=1,
    ),
    ("GET", "/api/v1/webhooks/endpoints/{id}/", 200): _key("GET", "/api/v1/webhooks/endpoints/{id}/"),
    ("PATCH", "/api/v1/webhooks/endpoints/{id}/", 200): _key(
        "PATCH", "/api/v1/webhooks/endpoints/{id}/", {"description": "renamed"}
    ),
    ("PATCH", "/api/v1/webhooks/endpoints/{id}/", 400): _key(
        "PATCH", "/api/v1/webhooks/endpoints/{id}/", {"is_active": "maybe"}
    ),
    ("DELETE", "/api/v1/webhooks/endpoints/{id}/", 204): _key("DELETE", "/api/v1/webhooks/endpoints/{id}/"),
    ("GET", "/api/v1/webhooks/endpoints/{id}/deliveries/", 200): _key(
        "GET", "/api/v1/webhooks/endpoints/{id}/deliveries/?status=failed"
    ),
    ("GET", "/api/v1/webhooks/endpoints/{id}/deliveries/", 400): _key(
        "GET", "/api/v1/webhooks/endpoints/{id}/deliveries/?status=gone"
    ),
    ("POST", "/api/v1/webhooks/endpoints/{id}/ping/", 202): _key("POST", "/api/v1/webhooks/endpoints/{id}/ping/"),
    ("POST", "/api/v1/webhooks/endpoints/{id}/replay/", 202): _key(
        "POST", "/api/v1/webhooks/endpoints/{id}/replay/", {"since": "2000-01-01T00:00:00Z"}
    ),
    ("POST", "/api/v1/webhooks/endpoints/{id}/replay/", 400): _key("POST", "/api/v1/webhooks/endpoints/{id}/replay/", {}),
    ("POST", "/api/v1/webhooks/endpoints/{id}/replay/", 409): _with(
        _key("POST", "/api/v1/webhooks/endpoints/{id}/replay/", {"since": "2000-01-01T00:00:00Z"}),
        setup=_endpoint_disabled,
    ),
    ("POST", "/api/v1/webhooks/endpoints/{id}/rotate-secret/", 200): _key(
        "POST", "/api/v1/webhooks/endpoints/{id}/rotate-secret/", {"grace_seconds": 60}
    ),
    ("POST", "/api/v1/webhooks/endpoints/{id}/rotate-secret/", 400): _key(
        "POST", "/api/v1/webhooks/endpoints/{id}/rotate-secret/", {"signature_scheme": "v9"}
    ),
    ("GET", "/api/v1/webhooks/deliveries/", 200): _key("GET", "/api/v1/webhooks/deliveries/?status=failed"),
    ("GET", "/api/v1/webhooks/deliveries/", 400): _key("GET", "/api/v1/webhooks/deliveries/?endpoint=not-a-uuid"),
    ("GET", "/api/v1/webhooks/deliveries/", 404): _key("GET", "/api/v1/webhooks/deliveries/?page=99"),
    ("GET", "/api/v1/webhooks/deliveries/{id}/", 200): _key("GET", "/api/v1/webhooks/deliveries/{id}/"),
    ("POST", "/api/v1/webhooks/deliveries/{id}/redeliver/", 202): _key("POST", "/api/v1/webhooks/deliveries/{id}/redeliver/"),
    ("POST", "/api/v1/webhooks/deliveries/{id}/redeliver/", 409): _with(
        _key("POST", "/api/v1/webhooks/deliveries/{id}/redeliver/"), setup=_endpoint_disabled
    ),
    ("GET", "/api/v1/webhooks/event-types/", 200): _key("GET", "/api/v1/webhooks/event-types/"),
    ("GET", "/api/v1/webhooks/keys/", 200): _key("GET", "/api/v1/webhooks/keys/"),
    ("GET", "/api/v1/webhooks/keys/", 400): _key("GET", "/api/v1/webhooks/keys/?endpoint=not-a-uuid"),
}  # fmt: skip


# --- the cases every operation gets from the layers in front of it ---------------------------------------


def _generic(method: str, template: str, status: int, operator_only: bool) -> Callable[[World], Call] | None:
    own = "operator" if operator_only else "key"
    if status == 401:
        return lambda w: Call("anonymous", method, concrete(template, w))
    if status == 403:  # a key without the scope; any key on an operators' route
        return lambda w: Call("key" if operator_only else "narrow", method, concrete(template, w))
    if status == 429:
        return lambda w: Call("limited", method, concrete(template, w))
    if status == 503:
        return lambda w: Call("key", method, concrete(template, w))
    if status == 404 and "{" in template:  # the success case, but the first object it names does not exist
        param = _first_param(template)
        success = next(
            (EXPLICIT[(method, template, ok)] for ok in (200, 201, 202, 204) if (method, template, ok) in EXPLICIT),
            None,
        )

        def unknown(w):
            call = success(w) if success else Call(own, method, concrete(template, w))
            call.path = (
                concrete(template, w, **{param: UNKNOWN}) + call.path.partition("?")[1] + call.path.partition("?")[2]
            )
            return call

        return unknown
    if status == 400:  # a query parameter given twice, refused on every path
        return lambda w: Call(own, method, concrete(template, w) + "?page=1&page=2")
    if status == 415:  # a body the operation cannot read
        return lambda w: Call(own, method, concrete(template, w), b"name=x", content_type="text/plain")
    if status == 413 and method in ("POST", "PATCH", "PUT", "DELETE"):
        return lambda w: Call(own, method, concrete(template, w), json.dumps({"padding": "x" * 100_000}).encode(),
                              settings={"API_MAX_BODY_BYTES": 1024, "DEPLOY_BUNDLE_MAX_BYTES": 1024})  # fmt: skip
    return None


def status_cases(schema: dict) -> tuple[dict, list[str]]:
    """(case builder by (method, path, status), documented statuses without a case)."""
    cases, missing = {}, []
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            operator_only = operation.get("x-required-scope") is None
            for status in map(int, operation["responses"]):
                key = (method.upper(), path, status)
                builder = EXPLICIT.get(key) or _generic(method.upper(), path, status, operator_only)
                if builder is None:
                    missing.append(f"{method.upper()} {path} {status}")
                else:
                    cases[key] = builder
    return cases, missing


def test_every_documented_status_has_a_case(schema):
    cases, missing = status_cases(schema)
    assert not missing, "documented statuses without a case in STATUS_CASES:\n" + "\n".join(missing)
    assert len(cases) >= 300  # the whole API, not an empty schema
    documented = {(m.upper(), p, int(s)) for p, ms in schema["paths"].items() for m, o in ms.items()
                  if m in ("get", "post", "put", "patch", "delete") for s in o["responses"]}  # fmt: skip
    stale = sorted(set(EXPLICIT) - documented)
    assert not stale, f"cases for statuses the schema does not document (document them or drop the case): {stale}"


# --- running the cases ------------------------------------------------------------------------------


@pytest.fixture
def world(db, settings, django_capture_on_commit_callbacks) -> tuple[World, dict]:
    """Tenant A with one of everything (two successful deployments, the second live; a revoked key), a
    suspended tenant, and the callers."""
    from rest_framework.test import APIClient

    from apikeys import services as apikey_services
    from apikeys.scopes import SCOPES
    from tenants import deployments, services
    from tenants.bundles import bundle_build
    from tenants.models import Tenant, Website
    from tenants.plans import tenant_plan_override

    settings.WEBHOOKS_ALLOW_HTTP, settings.WEBHOOKS_ALLOWED_NETWORKS = True, ["127.0.0.0/8"]
    settings.API_KEY_CREATE_RATE = settings.API_KEY_AUTH_FAILURE_RATE = "10000/m"
    from django.core.cache import cache

    cache.clear()
    a = tenant_with_everything("status-a", tier="enterprise")
    tenant = Tenant.objects.get(pk=a.tenant)
    website = Website.objects.get(pk=a.website)
    for version in ("v1", "v2"):
        deployment = deployments.deployment_create(
            website=website, bundle=bundle_build({"index.html": version}), run=False
        )
        deployments.deployment_execute(deployment=deployment)
    suspended = services.tenant_create(name="Suspended", slug="status-suspended", tier="free")
    services.tenant_suspend(tenant=suspended, reason="status cases")
    revoked, _ = apikey_services.apikey_create(tenant=tenant, name="revoked", scopes=["usage:read"])
    apikey_services.apikey_revoke(api_key=revoked, revoked_by="test", reason="status cases")
    with django_capture_on_commit_callbacks(execute=True):  # the gateway knows the keys and the plan
        tenant_plan_override(tenant=tenant, burst_per_second=100_000)
        _, full = apikey_services.apikey_create(tenant=tenant, name="full", scopes=list(SCOPES))
        _, limited = apikey_services.apikey_create(tenant=tenant, name="limited", scopes=list(SCOPES),
                                                   rate_limit_per_minute=1)  # fmt: skip
        narrow = {
            scope: apikey_services.apikey_create(tenant=tenant, name=f"only {scope}", scopes=[scope])[1]
            for scope in ("usage:read", "websites:read")
        }
    w = World(
        tenant=a.tenant, slug="status-a", website=a.website, website_name=a.website_name, hostname=a.hostname,
        deployment=a.deployment, endpoint=a.endpoint, delivery=a.delivery, key=a.key, revoked_key=str(revoked.pk),
        invalidation=a.invalidation, suspended_tenant=str(suspended.pk),
    )  # fmt: skip
    from django.contrib.auth.models import Group
    from django.contrib.auth.models import User as UserModel

    from console.roles import PLATFORM_ADMINS

    operator_user = UserModel.objects.create_user("status-operator", password="x-Status-1", is_staff=True)
    operator_user.groups.add(Group.objects.get(name=PLATFORM_ADMINS))
    operator = APIClient()
    operator.force_login(operator_user)
    clients = {
        "key": APIClient(HTTP_AUTHORIZATION=f"Bearer {full}"),
        "limited": APIClient(HTTP_AUTHORIZATION=f"Bearer {limited}"),
        "operator": operator,
        "anonymous": APIClient(),
        **{f"narrow:{scope}": APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}") for scope, raw in narrow.items()},
    }
    return w, clients


def _send(clients: dict, call: Call, scope: str | None):
    from tests.hardening.test_isolation import bundle

    caller = call.caller
    if caller == "narrow":
        caller = "narrow:usage:read" if scope != "usage:read" else "narrow:websites:read"
    client = clients[caller]
    if caller == "limited":  # spend the minute's one request (this one may already be refused)
        client.get(f"{V1}/usage/")
    with override_settings(**call.settings):
        if call.body == "bundle":
            return client.generic(call.method, call.path, **_multipart(bundle()))
        if isinstance(call.body, bytes):
            return client.generic(call.method, call.path, call.body, content_type=call.content_type)
        return getattr(client, call.method.lower())(call.path, call.body, format="json")


def _multipart(fields: dict) -> dict:
    from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

    return {"data": encode_multipart(BOUNDARY, fields), "content_type": MULTIPART_CONTENT}


def _run(schema, clients, w, statuses: set[int] | None = None, skip: set[int] = frozenset()) -> list[str]:
    cases, _ = status_cases(schema)
    wrong = []
    for (method, path, status), build in sorted(cases.items(), key=lambda item: (item[0][0] == "DELETE", item[0])):
        if (statuses is not None and status not in statuses) or status in skip:
            continue
        call = build(w)
        scope = schema["paths"][path][method.lower()].get("x-required-scope")
        with transaction.atomic():  # each case starts from the same world
            if call.setup:
                call.setup()
            response = _send(clients, call, scope)
            transaction.set_rollback(True)
        label = f"{method} {path} {status} ({call.caller}: {call.method} {call.path[:100]})"
        if response.status_code != status:
            wrong.append(f"{label}: got {response.status_code} {response.content[:200]!r}")
        elif status >= 400:
            body = response.json()
            if set(body) != {"error"} or set(body["error"]) != {"code", "message", "fields"}:
                wrong.append(f"{label}: not the error shape: {body}")
            elif status in (400, 415) and not body["error"]["fields"]:
                wrong.append(f"{label}: a 400 for a body that names no field: {body}")
    return wrong


def test_every_documented_status_occurs(schema, world):
    """Each case's request gets exactly its documented status (all of them but 503, below)."""
    w, clients = world
    wrong = _run(schema, clients, w, skip={503})
    assert not wrong, f"{len(wrong)} documented statuses did not occur:\n" + "\n".join(wrong)


def test_every_documented_503_occurs_with_the_gateway_store_down(schema, world, settings):
    """Redis stopped, the gateway failing closed: every operation, called with a key, answers 503."""
    w, clients = world
    settings.API_GATEWAY_FAIL_MODE = "closed"
    stack("stop", "redis")
    try:
        wrong = _run(schema, clients, w, statuses={503})
    finally:
        stack("start", "redis")
    assert not wrong, "\n".join(wrong)
