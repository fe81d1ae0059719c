import errno
import os
import time

import pytest

from tests.helpers import serving_in_request_thread


@pytest.fixture(autouse=True)
def _dummy_cdn_calls():
    from cdn.backends.dummy import DummyBackend

    DummyBackend.calls.clear()
    yield
    DummyBackend.calls.clear()


@pytest.fixture(scope="session")
def origin_server(django_db_setup, django_db_blocker):
    """The Django origin on the port the stack's Varnish forwards to (PLATFORM_ORIGIN_PORT), on the test DB."""
    from django.test.testcases import LiveServerThread, QuietWSGIRequestHandler

    class OriginThread(LiveServerThread):
        def _create_server(self, connections_override=None):
            # A fixed port (Varnish's backend): reuse it while the last run's sockets wind down.
            return self.server_class(
                (self.host, self.port), QuietWSGIRequestHandler, allow_reuse_address=True,
                connections_override=connections_override,
            )  # fmt: skip

    port = int(os.environ["PLATFORM_ORIGIN_PORT"])
    with django_db_blocker.unblock():
        deadline = time.monotonic() + 20
        while True:
            thread = OriginThread("127.0.0.1", static_handler=serving_in_request_thread, port=port)
            thread.daemon = True
            thread.start()
            thread.is_ready.wait()
            if not thread.error:
                break
            if not (isinstance(thread.error, OSError) and thread.error.errno == errno.EADDRINUSE):
                raise thread.error
            if time.monotonic() > deadline:
                raise RuntimeError(f"origin port 127.0.0.1:{port} stays in use") from thread.error
            time.sleep(0.5)
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
