"""Schemathesis against /api/schema/ with a valid API key: no 5xx, responses conform to the schema.

Every operation of the published schema is driven in-process through the WSGI application (the real
middleware stack: gateway, rate limiter, routing) with a fixed seed and a bounded number of generated
examples; `test_edge_values` sends the values generators rarely pick, explicitly.
"""

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = 6
SEED = 20261128


@pytest.fixture
def operator_headers(django_user_model):
    """A staff session, for the operator-only operations, with the CSRF pair DRF requires for writes."""
    from django.test import Client

    client = Client()
    client.force_login(django_user_model.objects.create_user("fuzz-operator", password="x-Fuzz-1", is_staff=True))
    token = "f" * 32
    return {"X-CSRFToken": token}, {"sessionid": client.cookies["sessionid"].value, "csrftoken": token}


def _operator_only(operation) -> bool:
    return operation.path.startswith("/api/v1/tenants") or (
        operation.path.endswith("/cdn/") and operation.method.lower() == "patch"
    )


@pytest.fixture
def api_schema(two_tenants):
    import schemathesis
    from django.core.signals import request_finished, request_started
    from django.core.wsgi import get_wsgi_application
    from django.db import close_old_connections

    a, _, raw_key = two_tenants
    headers = {"Authorization": f"Bearer {raw_key}"}
    # As Django's test client does: requests run inside the test's transaction, which the real handler's
    # end-of-request connection cleanup would close.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application(), headers=headers)
        yield schema, headers, a
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _checks():
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

    return [not_a_server_error, response_schema_conformance, content_type_conformance]


def test_every_operation_with_generated_data(api_schema, operator_headers):
    """With the key of tenant A; operator-only operations (which refuse every key, see the isolation
    matrix) with an operator's session instead."""
    schema, key_headers, a = api_schema
    checks = _checks()
    # Deletions, then the operators' (which may suspend tenant A) last: the others still find A's objects.
    operations = sorted(
        (result.ok() for result in schema.get_all_operations()),
        key=lambda op: (_operator_only(op), op.method.lower() == "delete"),
    )
    assert len(operations) >= 30, [op.label for op in operations]  # the whole API, not an empty schema
    statuses: dict[str, set[int]] = {}

    for operation in operations:
        rounds = [None] + ([_path_ids(operation.path, a)] if "{" in operation.path else [])
        headers, cookies = operator_headers if _operator_only(operation) else (key_headers, None)
        for path_ids in rounds:
            _fuzz(
                operation, headers=headers, cookies=cookies, checks=checks, statuses=statuses.setdefault(operation.label, set()),
                path_ids=path_ids,
            )  # fmt: skip
    assert len(statuses) == len(operations)
    # The key reached the views: some operation answered 2xx, and none with a server error.
    assert any(code < 300 for codes in statuses.values() for code in codes), statuses
    assert not [label for label, codes in statuses.items() if any(code >= 500 for code in codes)]


# Detail routes get generated ids (404s) and, in a second round, the ids of tenant A's own objects, so the
# views behind them run on generated bodies and query strings too.
_OBJECT_OF_PREFIX = {
    "/api/v1/websites/": "website",
    "/api/v1/deployments/": "deployment",
    "/api/v1/keys/": "key",
    "/api/v1/webhooks/endpoints/": "endpoint",
    "/api/v1/webhooks/deliveries/": "delivery",
    "/api/v1/tenants/": "tenant",
}


def _path_ids(path: str, a) -> str:
    """The id of tenant A's object a detail route names (whatever its path parameter is called)."""
    for prefix, name in _OBJECT_OF_PREFIX.items():
        if path.startswith(prefix):
            return getattr(a, name)
    raise AssertionError(f"no object of tenant A for {path}: add its prefix to _OBJECT_OF_PREFIX")


def _fuzz(operation, *, headers: dict, cookies: dict | None, checks: list, statuses: set, path_ids: str | None) -> None:
    strategy = operation.as_strategy()
    if path_ids is not None:

        def with_ids(case):
            case.path_parameters = {name: path_ids for name in case.path_parameters or {}}
            return case

        strategy = strategy.map(with_ids)

    @seed(SEED)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case):
        response = case.call(headers=headers, cookies=cookies)
        statuses.add(response.status_code)
        case.validate_response(response, checks=checks, headers=headers)

    run()


V1 = "/api/v1"
NUL = "\x00"
LONG = "x" * 10_000


def _edge_requests(a) -> list[tuple[str, str, object]]:
    """(method, path, JSON body or raw bytes) with the values generators rarely pick."""
    website, endpoint = f"{V1}/websites/{a.website}", f"{V1}/webhooks/endpoints/{a.endpoint}"
    lists = [f"{V1}/websites/", f"{V1}/keys/", f"{V1}/webhooks/endpoints/", f"{V1}/webhooks/deliveries/"]
    requests = []
    for path in lists:
        for query in (
            "page=0", "page=-1", "page=abc", "page=99999999999999999999", "page_size=0", "page_size=-5",
            "page_size=1000000", "search=%00", f"search={LONG}", "ordering=nonexistent", "ordering=%00",
            "status=%00", "endpoint=%00", "endpoint=not-a-uuid", "tenant=%00", "hostname=%00", "is_active=maybe",
        ):  # fmt: skip
            requests.append(("GET", f"{path}?{query}", None))
    for query in ("minutes=0", "minutes=-1", "minutes=1000000000000", "minutes=abc", "minutes=%00", "tenant=%00"):
        requests.append(("GET", f"{V1}/usage/?{query}", None))
    requests += [
        ("GET", f"{website}/deployments/?status=%00&page=0", None),
        ("GET", f"{V1}/websites/{'0' * 36}/", None),
        ("GET", f"{V1}/websites/{'-' * 36}/cdn/", None),
        ("POST", f"{V1}/websites/", {"name": NUL}),
        ("POST", f"{V1}/websites/", {"name": LONG}),
        ("POST", f"{V1}/websites/", {"name": "Café 🙂", "hostnames": [NUL]}),
        ("POST", f"{V1}/websites/", {"name": "hosts", "hostnames": ["a" * 300 + ".test", "-x-.test", "*.test", ""]}),
        ("POST", f"{V1}/websites/", {"name": None, "hostnames": None}),
        ("POST", f"{V1}/websites/", [1, 2]),
        ("POST", f"{V1}/websites/", b"{not json"),
        ("POST", f"{V1}/websites/", b"\xff\xfe"),
        ("PATCH", f"{website}/", {"name": NUL, "status": NUL}),
        ("PATCH", f"{website}/", {"hostnames": ["www.ok.test"] * 500}),
        ("POST", f"{website}/hostnames/%00/verify/", None),
        ("POST", f"{website}/hostnames/b%C3%BCcher%F0%9F%99%82.test/verify/", None),
        ("POST", f"{website}/hostnames/{'a' * 5000}.test/verify/", None),
        ("POST", f"{website}/hostnames/{a.hostname}/verify/", {"unexpected": NUL}),
        ("POST", f"{website}/rollback/", {"deployment": NUL}),
        ("POST", f"{website}/rollback/", {"deployment": "not-a-uuid"}),
        ("POST", f"{website}/invalidations/", {"paths": [NUL]}),
        ("POST", f"{website}/invalidations/", {"paths": ["/" + "a" * 3999, "", "no-slash", "/../etc"]}),
        ("POST", f"{website}/invalidations/", {"paths": "/"}),
        ("POST", f"{V1}/keys/", {"name": NUL, "scopes": ["usage:read"]}),
        ("POST", f"{V1}/keys/", {"name": "far", "scopes": ["usage:read"], "expires_at": "9999-12-31T23:59:59Z"}),
        ("POST", f"{V1}/keys/", {"name": "past", "scopes": ["usage:read"], "expires_at": "0001-01-01T00:00:00Z"}),
        ("POST", f"{V1}/keys/", {"name": "scopes", "scopes": [NUL, "", "x" * 1000]}),
        ("POST", f"{V1}/keys/{a.key}/rotate/", {"grace_seconds": 10**18}),
        ("POST", f"{V1}/keys/{a.key}/rotate/", {"grace_seconds": -1}),
        ("POST", f"{V1}/webhooks/endpoints/", {"url": NUL, "event_types": ["*"]}),
        ("POST", f"{V1}/webhooks/endpoints/", {"url": "http://[::1", "event_types": ["*"]}),
        ("POST", f"{V1}/webhooks/endpoints/", {"url": "http://127.0.0.1:99999/x", "event_types": ["*"]}),
        ("POST", f"{V1}/webhooks/endpoints/", {"url": "http://127.0.0.1:9/x", "event_types": [NUL]}),
        ("PATCH", f"{endpoint}/", {"url": "ftp://127.0.0.1/x", "description": NUL}),
        ("POST", f"{endpoint}/replay/", {"since": "0001-01-01T00:00:00Z"}),
        ("POST", f"{endpoint}/replay/", {"since": "9999-12-31T23:59:59Z"}),
        ("POST", f"{endpoint}/rotate-secret/", {"grace_seconds": 10**18}),
        ("GET", f"{endpoint}/deliveries/?status=%00&page=-1", None),
    ]
    return requests


def test_edge_values_get_a_clear_error_never_a_server_error(two_tenants):
    """Explicit edge values (NUL bytes, huge numbers, overlong strings, wrong JSON types, bad encodings):
    a 2xx or a 4xx in the one error shape, never a 5xx."""
    from rest_framework.test import APIClient

    a, _, raw_key = two_tenants
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    failures = []
    for method, path, body in _edge_requests(a):
        if isinstance(body, bytes):
            response = client.generic(method, path, body, content_type="application/json")
        else:
            response = getattr(client, method.lower())(path, body, format="json")
        if response.status_code >= 500:
            failures.append((method, path[:120], repr(body)[:80], response.status_code, response.content[:200]))
        elif response.status_code >= 400 and set(response.json()) != {"error"}:
            failures.append((method, path[:120], repr(body)[:80], "not the error shape", response.content[:200]))
    assert not failures, "\n".join(map(str, failures))
