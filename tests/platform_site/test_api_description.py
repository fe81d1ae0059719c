"""The published API description (/api/schema/) says what the API does, operation by operation, and the API
keeps the conventions it states: one trailing-slash rule, 405 for an unlisted method, unknown or mistyped
body fields refused with every field error at once, the site's public URL, only honoured filters."""

import re

import pytest
from django.conf import settings

from apikeys.scopes import SCOPES

pytestmark = pytest.mark.django_db

V1 = "/api/v1/"
ERROR_STATUSES_EVERYWHERE = {"401", "403", "429", "503"}
OPERATOR_ONLY = {
    ("get", "/api/v1/tenants/"), ("post", "/api/v1/tenants/"), ("get", "/api/v1/tenants/{id}/"),
    ("patch", "/api/v1/tenants/{id}/"), ("post", "/api/v1/tenants/{id}/suspend/"),
    ("post", "/api/v1/tenants/{id}/reactivate/"), ("get", "/api/v1/tenants/{tenant_id}/usage-cost/"),
    ("get", "/api/v1/usage/costs/"), ("patch", "/api/v1/websites/{website_id}/cdn/"),
}  # fmt: skip


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield method, path, operation


def _resolve(schema, node):
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_every_operation_has_a_resource_tag_a_summary_its_scope_and_examples(schema):
    declared_tags = {tag["name"] for tag in schema["tags"]}
    problems = []
    seen = 0
    for method, path, operation in operations(schema):
        seen += 1
        label = f"{method.upper()} {path}"
        tags = operation.get("tags", [])
        if len(tags) != 1 or tags[0] not in declared_tags:
            problems.append(f"{label}: tags {tags} (declared: {sorted(declared_tags)})")
        if not operation.get("summary"):
            problems.append(f"{label}: no summary")
        scope = operation.get("x-required-scope", "missing")
        if (method, path) in OPERATOR_ONLY:
            if scope is not None or tags != ["Operators"] or "Operators only" not in operation["description"]:
                problems.append(f"{label}: operator-only, documented as scope {scope!r} under {tags}")
        elif scope not in SCOPES or f"`{scope}`" not in operation.get("description", "") or tags == ["Operators"]:
            problems.append(f"{label}: scope {scope!r} not documented (a key may call it)")
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None and not body.get("examples"):
            problems.append(f"{label}: no request example")
        for status, response in operation["responses"].items():
            content = response.get("content", {}).get("application/json")
            if status.startswith("2") and content is not None and not content.get("examples"):
                problems.append(f"{label}: no example of its {status} response")
    assert seen >= 40
    assert not problems, "\n".join(problems)


def test_every_error_status_an_operation_can_return_is_documented_with_the_error_shape(schema):
    problems = []
    for method, path, operation in operations(schema):
        label = f"{method.upper()} {path}"
        responses = operation["responses"]
        statuses = set(responses)
        expected = set(ERROR_STATUSES_EVERYWHERE)
        parameters = operation.get("parameters", [])
        if "requestBody" in operation:
            expected.add("400")
        if method in ("post", "put", "patch", "delete"):
            expected.add("413")  # refused from the Content-Length, whether the operation reads a body or not
        if any(parameter["in"] == "query" for parameter in parameters):
            expected.add("400")
        if "{" in path or any(parameter["name"] == "page" for parameter in parameters):
            expected.add("404")
        # Nothing in these can conflict (tests/platform_site/test_api_statuses.py proves each 409 listed).
        no_conflict = {
            ("patch", "/api/v1/websites/{website_id}/cdn/"),
            ("post", "/api/v1/websites/{id}/hostnames/{hostname}/verify/"),
            ("patch", "/api/v1/tenants/{id}/"),
            ("patch", "/api/v1/webhooks/endpoints/{id}/"),
            ("post", "/api/v1/webhooks/endpoints/{id}/ping/"),
            ("post", "/api/v1/webhooks/endpoints/{id}/rotate-secret/"),
            ("post", "/api/v1/websites/{website_id}/invalidations/"),
        }
        if method in ("post", "patch") and (method, path) not in no_conflict:
            expected.add("409")  # a state or a uniqueness the request conflicts with
        if missing := expected - statuses:
            problems.append(f"{label}: undocumented {sorted(missing)}")
        for status in statuses:
            if status.startswith(("4", "5")):
                content = responses[status].get("content", {}).get("application/json", {})
                if content.get("schema") != {"$ref": "#/components/schemas/Error"} or not content.get("examples"):
                    problems.append(f"{label}: {status} without the Error schema and an example")
    assert not problems, "\n".join(problems)
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert set(_resolve(schema, error["properties"]["error"])["properties"]) == {"code", "message", "fields"}


def test_objects_are_objects_and_numbers_have_real_bounds(schema):
    components = schema["components"]["schemas"]
    for name in ("WebsiteOutput", "WebsiteCdnOutput"):
        assert components[name]["properties"]["cdn_config"]["type"] == "object", name
    assert components["PatchedWebsiteCdnInputRequest"]["properties"]["cdn_config"]["type"] == "object"
    unbounded = []

    def walk(node, where):
        if isinstance(node, dict):
            for key in ("maximum", "minimum"):
                # int64's limits are a column type, not a bound; a real bound is a number JSON clients hold exactly.
                if isinstance(node.get(key), int) and abs(node[key]) > 2**53 - 1:
                    unbounded.append(f"{where}: {key} {node[key]}")
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}[{index}]")

    walk(schema, "#")
    assert not unbounded, unbounded
    deployment = components["DeploymentOutput"]["properties"]
    assert deployment["bundle_size"]["maximum"] == settings.DEPLOY_BUNDLE_MAX_BYTES
    assert deployment["file_count"]["maximum"] == settings.DEPLOY_BUNDLE_MAX_FILES


def test_request_bodies_are_closed_and_paths_follow_one_slash_rule(schema):
    for name, component in schema["components"]["schemas"].items():
        if name.endswith("Request"):
            assert component["additionalProperties"] is False, name
    assert [path for path in schema["paths"] if not path.endswith("/")] == []


def test_the_deployments_list_advertises_only_its_own_filters(schema):
    parameters = schema["paths"]["/api/v1/websites/{id}/deployments/"]["get"]["parameters"]
    assert sorted(p["name"] for p in parameters if p["in"] == "query") == ["page", "page_size", "status", "trigger"]


# --- every documented filter changes the result -------------------------------------------------


@pytest.fixture
def varied(tenant, website, staff_user):
    """Rows that differ in every filtered attribute, in two tenants."""
    from datetime import timedelta

    from django.utils import timezone

    from apikeys import services as apikey_services
    from apikeys.models import ApiUsageMinute
    from cdn import provider_requests
    from cdn import services as cdn_services
    from tenants import services
    from tenants.bundles import bundle_build
    from tenants.models import Deployment, Tenant
    from webhooks import services as webhook_services
    from webhooks.models import Delivery, Endpoint

    other = services.tenant_create(name="Zeta", slug="zeta", tier="enterprise")
    services.tenant_suspend(tenant=other, reason="filters")
    services.website_create(tenant=other, name="Zeta site", hostnames=["www.zeta.test"])
    second = services.website_create(tenant=tenant, name="Beta site", hostnames=["www.beta.test"])
    services.website_update(website=second, status="disabled")
    first = services.deployment_create(website=website, bundle=bundle_build({"index.html": "1"}), run=False)
    services.deployment_create(website=website, bundle=bundle_build({"index.html": "2"}), run=False)
    Deployment.objects.filter(pk=first.pk).update(status=Deployment.Status.FAILED, trigger=Deployment.Trigger.COMMAND)
    settings.WEBHOOKS_ALLOW_HTTP, settings.WEBHOOKS_ALLOWED_NETWORKS = True, ["127.0.0.0/8"]
    one, _ = webhook_services.endpoint_create(tenant=tenant, url="http://127.0.0.1:9/a", event_types=["*"])
    two, _ = webhook_services.endpoint_create(tenant=tenant, url="http://127.0.0.1:9/b", event_types=["*"])
    # A v1a endpoint publishes a signing key: naming endpoint `one` (v1) lists none of them.
    webhook_services.endpoint_create(
        tenant=tenant, url="http://127.0.0.1:9/c", event_types=["*"], signature_scheme="v1a"
    )
    # Usage 30 and 120 minutes ago: the default window (60) sees the first only.
    api_key, _ = apikey_services.apikey_create(tenant=tenant, name="usage", scopes=["usage:read"])
    minute = timezone.now().replace(second=0, microsecond=0)
    for ago, requests in ((30, 3), (120, 5)):
        ApiUsageMinute.objects.create(
            tenant=tenant, api_key=api_key, minute=minute - timedelta(minutes=ago), requests=requests
        )
    event = webhook_services.event_record(tenant=tenant, type="website.created", data={"website": {"id": "x"}})
    webhook_services.event_fan_out(event_id=event.pk)
    Delivery.objects.filter(endpoint=one).update(status=Delivery.Status.FAILED, finished_at=timezone.now())
    Endpoint.objects.filter(pk=two.pk).update(is_active=False)
    done = cdn_services.invalidation_request(website=website, paths=["/done/"], reason="filters")
    provider_requests.invalidation_flush(website_id=website.pk)
    cdn_services.invalidation_request(website=website, paths=["/waiting/"], reason="filters")
    assert Tenant.objects.count() == 2 and done.pk
    return {
        "{id}": {"/api/v1/websites/": str(website.pk), "/api/v1/webhooks/endpoints/": str(one.pk)},
        "{website_id}": str(website.pk),
        "tenant": [str(other.pk)], "hostname": ["www.beta.test"], "search": ["Beta", "zeta"],
        "endpoint": [str(one.pk)], "is_active": ["false"],
        "ordering": ["-created_at", "name", "-name", "url", "-url", "tier", "-tier"],
        "minutes": ["180"],
        # What the query of a non-list operation holds when another of its parameters is tried.
        "baseline": {"/api/v1/usage/": {"tenant": str(tenant.pk)}},
    }  # fmt: skip


def _concrete(path: str, data: dict) -> str:
    for name in ("{id}", "{website_id}"):
        if name in path:
            value = data[name]
            if isinstance(value, dict):
                value = next(v for prefix, v in value.items() if path.startswith(prefix))
            path = path.replace(name, value)
    return path


def _result(response) -> object:
    """What a filter may change: a page's ids (and tenants), or a whole body but its clock readings."""
    body = response.json()
    if isinstance(body, dict) and "results" in body:
        return [row.get("id", row.get("tenant")) for row in body["results"]]
    return {key: value for key, value in body.items() if key not in ("from", "to")}


def test_every_documented_filter_changes_the_result(schema, staff_client, varied):
    """Each query parameter of each GET (but pagination) narrows, reorders or changes what it returns for
    some value: a filter that is advertised and ignored fails here, and so does one without a value to try.
    Lists and the other reads alike (`/usage/?minutes=`, `/webhooks/keys/?endpoint=`)."""
    unproven = []
    tried = 0
    for method, path, operation in operations(schema):
        parameters = [p for p in operation.get("parameters", []) if p["in"] == "query"]
        if method != "get" or not any(p["name"] not in ("page", "page_size") for p in parameters):
            continue
        url = _concrete(path, varied)
        paged = {"page_size": 200} if any(p["name"] == "page" for p in parameters) else {}
        base = {**varied["baseline"].get(path, {}), **paged}
        everything = staff_client.get(url, base)
        assert everything.status_code == 200, (url, everything.content)
        baseline = _result(everything)
        assert baseline, f"{url}: nothing to filter"
        for parameter in parameters:
            name = parameter["name"]
            if name in ("page", "page_size"):
                continue
            values = parameter["schema"].get("enum") or varied.get(name)
            if values is None:
                unproven.append(f"{path} ?{name}: no value to try (add one to the `varied` fixture)")
                continue
            tried += 1
            for value in values:
                response = staff_client.get(url, {**base, name: value})
                assert response.status_code == 200, (url, name, value, response.content)
                if _result(response) != baseline:
                    break
            else:
                unproven.append(f"{path} ?{name}: no value among {values} changed the result")
    assert tried >= 18
    assert not unproven, "\n".join(unproven)


# --- conventions ----------------------------------------------------------------------------------


@pytest.fixture
def key(tenant):
    from rest_framework.test import APIClient

    from apikeys import services as apikey_services

    _, raw = apikey_services.apikey_create(tenant=tenant, name="docs", scopes=["websites:read", "websites:write"])
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_an_unlisted_method_is_a_405_for_everyone_never_a_403(key, website, tenant, client):
    for method, path in (
        ("put", f"{V1}websites/{website.pk}/"),  # the key holds the scopes of the path's other methods
        ("delete", f"{V1}tenants/{tenant.pk}/"),  # operators only: still 405, not "operators only"
        ("post", f"{V1}deployments/{'1' * 8}-1111-1111-1111-{'1' * 12}/"),
        ("delete", f"{V1}webhooks/event-types/"),  # a scope the key lacks
    ):
        for caller in (key, client):
            response = (
                getattr(caller, method)(path, {}, format="json") if caller is key else getattr(caller, method)(path)
            )
            assert response.status_code == 405, (method, path, response.content)
            assert response.json()["error"]["code"] == "method_not_allowed"


def test_unknown_and_mistyped_fields_are_refused_with_every_field_error_at_once(key, website):
    url = f"{V1}websites/{website.pk}/"
    before = key.get(url).json()
    response = key.patch(url, {"cache_overrides": {"html": "no-store"}}, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["cache_overrides"]
    assert "Unknown field" in response.json()["error"]["fields"]["cache_overrides"][0]
    assert key.get(url).json()["cache_overrides"] == before["cache_overrides"]

    response = key.post(
        f"{V1}websites/", {"name": "x" * 201, "hostnames": ["not a host"], "colour": "red"}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"name", "hostnames", "colour"}
    response = key.post(f"{V1}websites/", {"name": 7, "hostnames": "www.one.test"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"name", "hostnames"}
    response = key.post(
        f"{V1}websites/", {"name": "Fine", "hostnames": ["www.fine.test", "www.fine.test"]}, format="json"
    )
    assert response.status_code == 400 and "listed twice" in response.json()["error"]["fields"]["hostnames"][0]


def test_typed_filters_refuse_an_empty_or_invalid_value_and_page_size_is_bounded(key):
    assert key.get(f"{V1}websites/?status=").status_code == 400
    assert key.get(f"{V1}websites/?tenant=").status_code == 400
    assert key.get(f"{V1}websites/?search=").status_code == 200  # free text: empty matches everything
    for size in ("0", "201", "abc", "null"):
        response = key.get(f"{V1}websites/?page_size={size}")
        assert response.status_code == 400 and "page_size" in response.json()["error"]["fields"], size
    assert key.get(f"{V1}websites/?page_size=200").status_code == 200
    assert key.get(f"{V1}websites/?page=99").status_code == 404
    for page in ("", "abc", "last", "-1"):
        response = key.get(f"{V1}websites/?page={page}")
        assert response.status_code == 400 and "page" in response.json()["error"]["fields"], page


def test_an_ordering_the_list_does_not_offer_is_refused_naming_it(key, website):
    from tenants import services

    services.website_create(tenant=website.tenant, name="Another", hostnames=[])
    names = [row["name"] for row in key.get(f"{V1}websites/?ordering=-name").json()["results"]]
    assert names == ["Site A", "Another"]
    assert [row["name"] for row in key.get(f"{V1}websites/?ordering=name,-created_at").json()["results"]] == names[::-1]
    for ordering in ("secret", "-create_at", "", " name", "name,", "tenant__name", "name,%00"):
        response = key.get(f"{V1}websites/?ordering={ordering}")
        assert response.status_code == 400, (ordering, response.content)
        assert list(response.json()["error"]["fields"]) == ["ordering"], ordering


def test_request_schemas_say_what_text_they_refuse(schema):
    create = schema["components"]["schemas"]["WebsiteCreateInputRequest"]["properties"]
    pattern = re.compile(create["name"]["pattern"])
    assert pattern.fullmatch("Invoice unpaid") and pattern.fullmatch(" Café 🙂\tof 👨\u200d👩 ")
    for hidden in ("Invoice\x00unpaid", "Site\u202eA", "new\nline", "end\n", "c1\x85"):
        assert not pattern.fullmatch(hidden), hidden
    assert "format" not in create["name"] and "pattern" not in create["tenant"]  # a uuid keeps its format
    # A reason may span lines; it hides nothing either.
    reason = schema["components"]["schemas"]["TenantSuspendInputRequest"]["properties"]["reason"]
    multiline = re.compile(reason["pattern"])
    assert multiline.fullmatch("Invoice 2026-014 unpaid\r\nsee ticket 7\n")
    for hidden in ("Invoice\x00unpaid", "Site\u202eA", "esc\x1b[0m", "c1\x85"):
        assert not multiline.fullmatch(hidden), hidden


def test_websites_and_deployments_show_the_sites_public_url(key):
    from django.utils import timezone

    from tenants.bundles import bundle_build
    from tenants.models import Hostname, Website
    from tenants.services import deployment_create

    created = key.post(f"{V1}websites/", {"name": "Public", "hostnames": ["www.public.test"]}, format="json")
    assert created.status_code == 201, created.content
    website_id = created.json()["id"]
    port = f":{settings.SITES_PUBLIC_PORT}" if settings.SITES_PUBLIC_PORT else ""
    preview = f"{settings.SITES_PUBLIC_SCHEME}://{website_id}.{settings.SITES_PREVIEW_DOMAIN}{port}/"
    assert created.json()["url"] == preview  # the hostname is not verified yet: not served there
    deployment = deployment_create(
        website=Website.objects.get(pk=website_id), bundle=bundle_build({"index.html": "x"}), run=False
    )
    assert key.get(f"{V1}deployments/{deployment.pk}/").json()["site_url"] == preview

    Hostname.objects.filter(hostname="www.public.test").update(
        status=Hostname.Status.VERIFIED, verified_at=timezone.now()
    )
    public = f"{settings.SITES_PUBLIC_SCHEME}://www.public.test{port}/"
    assert key.get(f"{V1}websites/{website_id}/").json()["url"] == public
    assert key.get(f"{V1}websites/{website_id}/deployments/").json()["results"][0]["site_url"] == public
    assert key.get(f"{V1}deployments/{deployment.pk}/").json()["site_url"] == public


def test_the_scope_table_of_the_docs_lists_every_scope():
    table = (settings.BASE_DIR / "docs" / "api-keys.md").read_text()
    documented = set(re.findall(r"^\| `([a-z]+:[a-z]+)` \|", table, flags=re.MULTILINE))
    assert documented == set(SCOPES)
