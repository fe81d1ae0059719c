"""Every write endpoint of the API with hostile bodies: too large (413 before the body is read), nested
deeply (400), NUL characters (400). Always the one error shape, never a 5xx.

The endpoints come from the URL configuration through the isolation matrix's CASES (which fails when an
endpoint has no case), each called on tenant A's own objects by an operator, so every view is reached.
"""

import json

import pytest

from tests.hardening.test_isolation import CASES, Case, bundle

pytestmark = pytest.mark.django_db

# Deletions last: the other requests of a walk still find tenant A's objects.
WRITES = sorted(
    (
        (method, case)
        for (_, method), cases in sorted(CASES.items())
        if method in ("POST", "PUT", "PATCH", "DELETE")
        for case in (cases if isinstance(cases, tuple) else (cases,))
    ),
    key=lambda item: item[0] == "DELETE",
)


@pytest.fixture
def operator(two_tenants, django_user_model):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(django_user_model.objects.create_user("bodies", password="x-Bodies-1", is_staff=True,
                                                             is_superuser=True))  # fmt: skip
    a, _, _ = two_tenants
    return client, a


def _path(case: Case, a) -> str:
    return case.path.format(a=a, b=a)


def _error_shape(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}, body
    return body["error"]


def test_the_walk_covers_every_write_endpoint():
    assert len({(method, case.path) for method, case in WRITES}) >= 20


def test_a_body_over_the_limit_is_a_413_before_it_is_read(operator, settings):
    client, a = operator
    settings.API_MAX_BODY_BYTES = 64 * 1024
    settings.DEPLOY_BUNDLE_MAX_BYTES = 64 * 1024
    failures = []
    for method, case in WRITES:
        if case.multipart:
            fields = {"description": "big", "bundle": bundle()["bundle"]}
            fields["bundle"].write(b"\0" * (200 * 1024))
            fields["bundle"].seek(0)
            response = getattr(client, method.lower())(_path(case, a), fields, format="multipart")
        else:
            body = json.dumps({"padding": "x" * (80 * 1024)})
            response = client.generic(method, _path(case, a), body, content_type="application/json")
        if response.status_code != 413 or _error_shape(response)["code"] != "request_too_large":
            failures.append((method, case.path, response.status_code, response.content[:200]))
    assert not failures, "\n".join(map(str, failures))


HOSTILE_BODIES = {
    "nested 100 KB deep": b"[" * 50_000 + b"]" * 50_000,
    "nested objects": b'{"a":' * 40 + b"1" + b"}" * 40,
    "NUL in a value": json.dumps(
        {
            "name": "x\x00y",
            "paths": ["/a\x00"],
            "cdn_config": {"zone_id": "\x00"},
            "reason": "\x00",
            "url": "http://127.0.0.1:9/\x00",
        }
    ).encode(),  # fmt: skip
    "NUL in a nested key": json.dumps({"cdn_config": {"a\x00": 1}, "cache_overrides": {"html\x00": "x"}}).encode(),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_deep_nesting_and_nul_characters_are_a_400(name, operator):
    client, a = operator
    failures = []
    for method, case in WRITES:
        if case.multipart:
            response = client.post(_path(case, a), {"description": "x\x00", "bundle": bundle()["bundle"]},
                                   format="multipart")  # fmt: skip
        else:
            response = client.generic(method, _path(case, a), HOSTILE_BODIES[name], content_type="application/json")
        # A view that reads a body must refuse this one; one that reads none may act (a DELETE).
        expected = {400} if case.body or case.multipart else {200, 201, 202, 204, 400, 404, 409}
        if response.status_code not in expected or (response.status_code >= 400 and set(response.json()) != {"error"}):
            failures.append((method, case.path, response.status_code, response.content[:200]))
    assert not failures, "\n".join(map(str, failures))


def test_the_documented_invalidation_limits_can_be_reached(operator, settings):
    """20,000 paths in one request (3.1 MB of JSON) are accepted: the body limit does not undercut them."""
    client, a = operator
    paths = [f"/docs/section-{i % 50}/a-fairly-long-page-name-{i:05d}.html" for i in range(20_000)]
    body = json.dumps({"paths": paths})
    assert len(body) > 1_000_000
    response = client.post(f"/api/v1/websites/{a.website}/invalidations/", body, content_type="application/json")
    assert response.status_code == 202, response.content[:300]
    assert len(response.json()["paths"]) == 20_000
    too_many = json.dumps({"paths": paths + ["/one-more"]})
    response = client.post(f"/api/v1/websites/{a.website}/invalidations/", too_many, content_type="application/json")
    assert response.status_code == 400 and "paths" in _error_shape(response)["fields"]
