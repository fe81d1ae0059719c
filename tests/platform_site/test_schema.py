import re

import pytest
import yaml
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db


def test_openapi_schema_is_valid(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    validate(schema)
    assert schema["openapi"].startswith("3.")
    for path in (
        "/api/v1/tenants/",
        "/api/v1/websites/",
        "/api/v1/websites/{id}/deployments/",
        "/api/v1/deployments/{id}/",
    ):
        assert path in schema["paths"], path


def test_swagger_ui_is_served_locally(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    external = [url for url in re.findall(r'(?:src|href)="([^"]+)"', html) if url.startswith(("http:", "https:", "//"))]
    assert external == []


def test_the_schema_is_built_once_per_process_whatever_the_query(client, monkeypatch):
    """/api/schema/ is anonymous and costs ~50 ms of CPU to build: built once per format, and query
    parameters (which select a language or version we do not have) cannot make it build again."""
    from drf_spectacular.generators import SchemaGenerator

    from core.api_docs import SchemaView

    SchemaView._documents.clear()
    built = []
    original = SchemaGenerator.get_schema
    monkeypatch.setattr(SchemaGenerator, "get_schema", lambda self, **kw: built.append(1) or original(self, **kw))
    bodies = {}
    for query in ("", "?lang=fr", "?version=9", "?lang=" + "x" * 200, "?version=%00"):
        for accept in ("*/*", "application/vnd.oai.openapi+json"):
            response = client.get("/api/schema/" + query, HTTP_ACCEPT=accept)
            assert response.status_code == 200, (query, accept)
            bodies.setdefault(response["Content-Type"], set()).add(response.content)
    assert len(built) == 2  # one YAML, one JSON document, for 10 requests
    assert sorted(bodies) == [
        "application/vnd.oai.openapi+json",
        "application/vnd.oai.openapi; charset=utf-8",
    ]
    assert all(len(contents) == 1 for contents in bodies.values())
    assert yaml.safe_load(next(iter(bodies["application/vnd.oai.openapi; charset=utf-8"])))["openapi"].startswith("3.")
