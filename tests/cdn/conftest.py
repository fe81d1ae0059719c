import os

import pytest


@pytest.fixture(autouse=True)
def _dummy_cdn_calls():
    from cdn.backends.dummy import DummyBackend

    DummyBackend.calls.clear()
    yield
    DummyBackend.calls.clear()


@pytest.fixture(scope="session")
def origin_server(django_db_setup, django_db_blocker):
    """The Django origin on the port the stack's Varnish forwards to (PLATFORM_ORIGIN_PORT), on the test DB."""
    from django.test.testcases import LiveServerThread

    port = int(os.environ["PLATFORM_ORIGIN_PORT"])
    with django_db_blocker.unblock():
        thread = LiveServerThread("127.0.0.1", static_handler=lambda app: app, port=port)
        thread.daemon = True
        thread.start()
        thread.is_ready.wait()
        if thread.error:
            raise thread.error
        yield f"http://127.0.0.1:{port}"
        thread.terminate()


@pytest.fixture(scope="session")
def varnish_url() -> str:
    url = os.environ.get("VARNISH_URL")
    if not url:
        pytest.fail("VARNISH_URL is not set: the stack's Varnish is required (deploy/local/stack up)")
    return url


@pytest.fixture
def moto_endpoint() -> str:
    from django.conf import settings

    return settings.S3_ENDPOINT_URL
