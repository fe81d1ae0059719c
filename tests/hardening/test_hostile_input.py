"""Input an attacker sends to get past a proxy or a reviewer's eye, or to be read two ways: every such
request gets a 4xx in the one error shape naming what it refuses, never a 5xx and never a silent pick.

- the same JSON key twice (`{"name": "a", "name": "b"}`): a filter in front may read the first, the API the
  last; the same query parameter twice (`?status=active&status=disabled`), for the same reason;
- a JSON body in another encoding than UTF-8 (RFC 8259 §8.1), which a UTF-8 filter in front cannot read;
- text that hides what it says: bidirectional overrides (Trojan Source: `Site\u202eA` shows reversed in
  the console), control characters;
- digits that are not ASCII (`١٢`, `１`) where the description says integer or date-time;
- a body of another media type, or not parseable at all: the field named is `body`.
Size, depth and NUL characters: test_request_bodies.py; generated values: test_fuzzing.py.
"""

import json
import re

import pytest

pytestmark = pytest.mark.django_db

V1 = "/api/v1"
JSON = "application/json"


@pytest.fixture
def key(two_tenants):
    from rest_framework.test import APIClient

    a, _, raw_key = two_tenants
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {raw_key}"), a


def _refused(response, status: int, field: str) -> dict:
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}, body
    assert field in body["error"]["fields"], body
    return body["error"]


def test_a_json_key_given_twice_is_refused_naming_it(key):
    client, a = key
    for path, body, name in (
        (f"{V1}/websites/", b'{"name": "first", "name": "second"}', "name"),
        (f"{V1}/websites/{a.website}/invalidations/", b'{"paths": ["/a"], "paths": ["/"]}', "paths"),
        (f"{V1}/keys/", b'{"name": "k", "scopes": ["usage:read"], "scopes": ["keys:manage"]}', "scopes"),
    ):
        error = _refused(client.generic("POST", path, body, content_type=JSON), 400, name)
        assert "twice" in error["fields"][name][0]
    nested = b'{"cdn_config": {"zone_id": "a", "zone_id": "b"}}'
    _refused(client.generic("PATCH", f"{V1}/websites/{a.website}/", nested, content_type=JSON), 400, "zone_id")


def test_a_query_parameter_given_twice_is_refused_naming_it(key):
    client, a = key
    for query, name in (
        ("status=active&status=disabled", "status"),
        ("page_size=1&page_size=200", "page_size"),
        ("search=a&hostname=x&search=b", "search"),
    ):
        _refused(client.get(f"{V1}/websites/?{query}"), 400, name)
    _refused(client.get(f"{V1}/usage/?minutes=1&minutes=60"), 400, "minutes")
    _refused(client.get(f"{V1}/webhooks/keys/?endpoint={a.endpoint}&endpoint={a.endpoint}"), 400, "endpoint")
    assert client.get(f"{V1}/websites/?status=active&search=Site").status_code == 200


def test_a_json_body_is_utf8(key):
    client, _ = key
    body = json.dumps({"name": "Sixteen"})
    for content_type, data in (
        ("application/json; charset=utf-16", body.encode("utf-16")),
        ("application/json; charset=utf-32", body.encode("utf-32")),
        ("application/json; charset=latin-1", json.dumps({"name": "Café"}, ensure_ascii=False).encode("latin-1")),
    ):
        error = _refused(client.generic("POST", f"{V1}/websites/", data, content_type=content_type), 415, "body")
        assert "UTF-8" in error["fields"]["body"][0]
    for charset in ("utf-8", "UTF-8", "utf8"):
        response = client.generic(
            "POST",
            f"{V1}/websites/",
            json.dumps({"name": f"Fine {charset}"}),
            content_type=f"{JSON}; charset={charset}",
        )
        assert response.status_code == 201, (charset, response.content)


@pytest.mark.parametrize(
    "name",
    [
        "Site\u202eA",  # right-to-left override: shows as "SiteA" reversed after it
        "Pay\u2066ment\u2069",  # isolates
        "new\nline",
        "bell\x07",
        "esc\x1b[31mred",
        "del\x7f",
        "c1\x85inside",
        "trailing newline\n",  # checked as sent, before the trimming
    ],
)
def test_text_that_hides_what_it_says_is_refused_naming_the_field(key, name):
    client, a = key
    _refused(client.post(f"{V1}/websites/", {"name": name}, format="json"), 400, "name")
    _refused(client.patch(f"{V1}/websites/{a.website}/", {"name": name}, format="json"), 400, "name")
    _refused(client.post(f"{V1}/keys/", {"name": name, "scopes": ["usage:read"]}, format="json"), 400, "name")
    body = {"url": "http://127.0.0.1:9/x", "event_types": ["*"], "description": name}
    _refused(client.post(f"{V1}/webhooks/endpoints/", body, format="json"), 400, "description")


def test_text_that_is_only_unusual_is_accepted(key):
    client, _ = key
    for name in ("Café 🙂", "日本語のサイト", "עברית", "Family 👨\u200d👩\u200d👧", "tab\tinside"):
        response = client.post(f"{V1}/websites/", {"name": name}, format="json")
        assert response.status_code == 201, (name, response.content)
        assert response.json()["name"] == name


def test_digits_are_ascii_where_the_description_says_integer_or_date_time(key):
    client, a = key
    for minutes in ("\uff11", "\u0661\u0662", "1_0", " 5", "+5"):
        _refused(client.get(f"{V1}/usage/", {"minutes": minutes}), 400, "minutes")
    assert client.get(f"{V1}/usage/", {"minutes": "15"}).status_code == 200
    arabic_year = "\u0662\u0660\u0663\u0660-01-01T00:00:00Z"
    body = {"name": "k", "scopes": ["usage:read"], "expires_at": arabic_year}
    _refused(client.post(f"{V1}/keys/", body, format="json"), 400, "expires_at")
    since = {"since": "\u0662\u0660\u0662\u0660-01-01T00:00:00Z"}
    _refused(client.post(f"{V1}/webhooks/endpoints/{a.endpoint}/replay/", since, format="json"), 400, "since")


def test_a_body_of_another_media_type_or_unparseable_names_the_body(key):
    client, a = key
    for content_type, data in (
        ("text/plain", b'{"name": "x"}'),
        ("application/xml", b"<website><name>x</name></website>"),
        ("application/x-www-form-urlencoded", b"name=x"),
    ):
        error = _refused(client.generic("POST", f"{V1}/websites/", data, content_type=content_type), 415, "body")
        assert "application/json" in error["fields"]["body"][0]
    for data in (b'{"name": ', b"\xff\xfe", b'{"name": NaN}', b'{"n": ' + b"9" * 5000 + b"}"):
        _refused(client.generic("POST", f"{V1}/websites/", data, content_type=JSON), 400, "body")
    garbage = client.generic(
        "POST", f"{V1}/websites/{a.website}/deployments/", b"x", content_type="multipart/form-data"
    )
    _refused(garbage, 400, "body")


def _bundle():
    from tests.sitebundles import bundle_build, upload_file

    return upload_file(bundle_build({"index.html": "v1"}))


def test_descriptions_and_reasons_may_span_lines_but_hide_nothing(key):
    """A deployment's description is often a commit message: line breaks and tabs are what it holds; the
    characters that hide text are refused there as everywhere."""
    client, a = key
    message = "Release 42\n\n- fix the footer\r\n- new\tpricing page"
    response = client.post(
        f"{V1}/websites/{a.website}/deployments/",
        {"bundle": _bundle(), "description": message},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    assert response.json()["description"] == message.strip()
    for hiding in ("Release\u202e42", "esc\x1b[31m", "bell\x07"):
        refused = client.post(
            f"{V1}/websites/{a.website}/deployments/", {"bundle": _bundle(), "description": hiding}, format="multipart"
        )
        _refused(refused, 400, "description")
    schema = client.get("/api/schema/?format=json").json()
    description = schema["components"]["schemas"]["DeploymentCreateInputRequest"]["properties"]["description"]
    pattern = description.get("oneOf", [description])[0]["pattern"]  # oneOf: the text, or "" (allow_blank)
    assert re.fullmatch(pattern, message) and not re.fullmatch(pattern, "a\x1bb")
