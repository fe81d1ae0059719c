import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db(databases="__all__")
def test_readyz_reports_every_dependency(client, settings):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    checks = response.json()["checks"]
    assert set(checks) >= {"database", "cache", "broker", *settings.DATABASE_REPLICAS}
    assert settings.DATABASE_REPLICAS, "the real stack has a replica"
    assert all(checks[name]["ok"] for name in ("database", "cache", "broker", *settings.DATABASE_REPLICAS))
    assert checks["database"]["in_recovery"] is False
    assert checks["replica_1"]["in_recovery"] is True and checks["replica_1"]["required"] is False


def test_readyz_503_when_a_required_dependency_is_down(client):
    dead_redis = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    with override_settings(CACHES=dead_redis):
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["cache"]["ok"] is False and "Connection" in body["checks"]["cache"]["error"]
    assert body["checks"]["database"]["ok"] is True


def test_readyz_broker_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/1"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False
