import json

import pytest


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    """The published OpenAPI description, as a client fetches it."""
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return json.loads(response.content)
