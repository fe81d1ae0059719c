"""Browser tests: Debian's headless Chromium driven by Playwright for Python, against a live Django
server on the real stack (PostgreSQL, Redis, Celery workers). One server and one browser per session;
a fresh browser context (cookies) per test. Screenshots go to test-artifacts/console/."""

import contextlib
import os
from pathlib import Path

import pytest

from tests.helpers import serving_in_request_thread
from tests.webhooks.conftest import (
    WEBHOOKS_TEST_ENV,
    WorkerHandle,
    receiver,  # noqa: F401 - a real HTTP receiver on 127.0.0.1, shared fixture
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "console"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage",
    # Tenant hosts (<id>.sites.localhost, custom *.test names) reach the live server on 127.0.0.1 without
    # touching /etc/hosts or any DNS server.
    "--host-resolver-rules=MAP *.localhost 127.0.0.1, MAP *.test 127.0.0.1",
]  # fmt: skip


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.stack)


@pytest.fixture(scope="session")
def console_server(django_db_setup, django_db_blocker):
    """The whole Django app (admin, API) on a free port on 127.0.0.1, in a thread of this process."""
    from django.test.testcases import LiveServerThread

    with django_db_blocker.unblock():
        thread = LiveServerThread("127.0.0.1", static_handler=serving_in_request_thread, port=0)
        thread.daemon = True
        thread.start()
        thread.is_ready.wait()
        if thread.error:
            raise thread.error
        yield f"http://127.0.0.1:{thread.port}"
        thread.terminate()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless Chromium for the browser tests (they are one module), hermetic: the driver and the
    browser get HOME/TMPDIR/XDG_* in a temp dir. Module-scoped so that the rest of the suite runs with
    its own environment and without Playwright's event loop in this thread."""
    from playwright.sync_api import sync_playwright

    home = tmp_path_factory.mktemp("chromium-home")
    hermetic = {
        "HOME": str(home),
        "TMPDIR": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_RUNTIME_DIR": str(home / "runtime"),
    }
    # The driver process copies this process's environment when it starts; Chromium inherits it.
    with _environment(hermetic):
        playwright = sync_playwright().start()
    # Sync Playwright runs an event loop in this thread; Django would refuse ORM calls from it.
    with _environment({"DJANGO_ALLOW_ASYNC_UNSAFE": "true"}):
        try:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, env={**os.environ, **hermetic}
            )
            yield chromium
            chromium.close()
        finally:
            playwright.stop()


@contextlib.contextmanager
def _environment(values: dict):
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def page(browser, console_server):
    context = browser.new_context(base_url=console_server, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(20_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshot(page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 0
        return path

    return take


def login(page, username: str, password: str) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#login-form [type=submit]")
    page.wait_for_url("**/admin/")


# --- webhooks: a worker allowed to call receivers on 127.0.0.1 ------------------------------------

E2E_WEBHOOKS_ENV = {**WEBHOOKS_TEST_ENV, "WEBHOOKS_RETRY_SCHEDULE": "0"}  # one attempt, then failed


@pytest.fixture(scope="module")
def e2e_webhooks_worker(test_database_env, tmp_path_factory):
    """Module-scoped: gone before tests/webhooks (which kill their own worker on the same queue) run."""
    worker = WorkerHandle({**test_database_env, **E2E_WEBHOOKS_ENV}, tmp_path_factory.mktemp("e2e") / "worker.log")
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def e2e_webhooks_settings(settings):
    settings.WEBHOOKS_QUEUE = E2E_WEBHOOKS_ENV["WEBHOOKS_QUEUE"]
    settings.WEBHOOKS_ALLOW_HTTP = True
    settings.WEBHOOKS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.WEBHOOKS_RETRY_SCHEDULE = [0]
    settings.WEBHOOKS_CONNECT_TIMEOUT = 1
    settings.WEBHOOKS_READ_TIMEOUT = 3
    return settings


def every_admin_page(request) -> list[str]:
    """Each registered model admin's list page, its add page when `request.user` may add, and the change
    page of its first row when there is one."""
    from django.contrib import admin
    from django.urls import reverse

    urls = []
    for model, model_admin in admin.site._registry.items():
        info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        urls.append(reverse(f"{info}_changelist"))
        if model_admin.has_add_permission(request):
            urls.append(reverse(f"{info}_add"))
        first = model_admin.get_queryset(request).first()
        if first is not None:
            urls.append(reverse(f"{info}_change", args=[first.pk]))
    return urls
