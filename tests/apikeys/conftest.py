import logging
import re

import pytest

FULL_KEY = re.compile(r"plk_(live|test)_[0-9A-Za-z]{50}")


class _AllRecords(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.texts = []

    def emit(self, record):
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.texts.append(text)


@pytest.fixture(autouse=True)
def no_full_key_in_logs():
    """Every log record of every test here, at every level, must be free of full keys."""
    handler = _AllRecords()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    leaked = [text for text in handler.texts if FULL_KEY.search(text)]
    assert not leaked, f"full API key in logs: {leaked[:1]}"


@pytest.fixture(autouse=True)
def fresh_gateway_state():
    """Per-IP guards (django-ratelimit) and pending outcomes start empty in every test."""
    from django.core.cache import cache

    from apikeys.gateway import outcomes

    cache.clear()
    outcomes.pending.take()
    yield
    outcomes.pending.take()


@pytest.fixture
def other_tenant(db):
    from tenants import services

    return services.tenant_create(name="Tenant B", slug="tenant-b", tier="free")


@pytest.fixture
def make_key(django_capture_on_commit_callbacks):
    from apikeys import services
    from apikeys.scopes import SCOPES

    def make(tenant, scopes=None, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            api_key, raw_key = services.apikey_create(
                tenant=tenant, name=kwargs.pop("name", "ci"), scopes=list(scopes or SCOPES), **kwargs
            )
        return api_key, raw_key

    return make


@pytest.fixture
def key_client():
    from rest_framework.test import APIClient

    def client_for(raw_key, *, header="bearer"):
        client = APIClient()
        if header == "bearer":
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        else:
            client.credentials(HTTP_X_API_KEY=raw_key)
        return client

    return client_for


def error_of(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code, body
    return body["error"]


@pytest.fixture
def plain_static(settings):
    """Admin pages render without a collectstatic manifest."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
