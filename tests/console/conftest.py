import pytest

from tests.helpers import operator_create


def _member(django_user_model, username: str, group: str):
    return operator_create(username, f"{username}-pass-123", group)


@pytest.fixture
def support_user(django_user_model):
    from console.roles import SUPPORT

    return _member(django_user_model, "sam-support", SUPPORT)


@pytest.fixture
def platform_admin(django_user_model):
    from console.roles import PLATFORM_ADMINS

    return _member(django_user_model, "pat-admin", PLATFORM_ADMINS)


@pytest.fixture
def client_for():
    from django.test import Client

    def login(user):
        client = Client()
        client.force_login(user)
        return client

    return login


@pytest.fixture
def make_key(django_capture_on_commit_callbacks):
    from apikeys import services

    def make(tenant, *, name="ci", scopes=("websites:read",), **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return services.apikey_create(tenant=tenant, name=name, scopes=list(scopes), **kwargs)

    return make
