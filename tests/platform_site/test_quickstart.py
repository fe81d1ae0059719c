"""docs/quickstart.md works as written: its `sh` blocks, in order, in one bash, against a live server with
a real Celery worker and a real API key (key -> website -> deploy -> rollback -> invalidate -> webhook to
a local receiver -> limits)."""

import os
import re
import socket
import subprocess
import sys

import pytest
from django.conf import settings

from tests.workers import CeleryWorker

pytestmark = pytest.mark.django_db(transaction=True)

QUICKSTART = settings.BASE_DIR / "docs" / "quickstart.md"
QUEUE = f"quickstart-webhooks-{os.getpid()}"
# As a local platform's operator would set them (the quickstart says so): receivers on loopback.
WEBHOOK_ENV = {"WEBHOOKS_ALLOW_HTTP": "true", "WEBHOOKS_ALLOWED_NETWORKS": "127.0.0.0/8", "WEBHOOKS_QUEUE": QUEUE}


def shell_blocks() -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```$", QUICKSTART.read_text(), flags=re.MULTILINE | re.DOTALL)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def quickstart_worker(test_database_env, tmp_path):
    """A worker for deployments, purges and this test's webhooks queue, configured as the platform is."""
    worker = CeleryWorker({**test_database_env, **WEBHOOK_ENV}, tmp_path / "worker.log",
                          queues=["default", "cdn", QUEUE], hostname=f"quickstart-{os.getpid()}@localhost",
                          concurrency=4, pool="threads")  # fmt: skip
    worker.start()
    yield worker.log_path
    worker.stop()


def test_the_quickstart_runs_as_written(live_server, quickstart_worker, settings, tmp_path):
    from apikeys import services as apikey_services
    from apikeys.scopes import SCOPES
    from tenants import services

    blocks = shell_blocks()
    assert len(blocks) >= 7, "the quickstart lost its commands"
    port = live_server.url.rsplit(":", 1)[1]
    settings.SITES_PUBLIC_SCHEME, settings.SITES_PUBLIC_PORT = "http", port
    settings.WEBHOOKS_ALLOW_HTTP, settings.WEBHOOKS_ALLOWED_NETWORKS = True, ["127.0.0.0/8"]
    settings.WEBHOOKS_QUEUE = QUEUE
    settings.DATABASE_ROUTERS = []  # the live server's thread reads the test's writes on the primary
    tenant = services.tenant_create(name="Quickstart", slug="quickstart", tier="starter")
    scopes = [scope for scope in SCOPES if scope != "keys:manage"]  # what the quickstart asks the operator for
    _, raw_key = apikey_services.apikey_create(tenant=tenant, name="laptop", scopes=scopes)

    script = "set -euo pipefail\n" + "\n".join(blocks)
    env = {
        "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",  # python3 with standardwebhooks
        "HOME": str(tmp_path), "PLATFORM": live_server.url, "KEY": raw_key, "RECEIVER_PORT": str(_free_port()),
    }  # fmt: skip
    run = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"{output[-4000:]}\nworker: {quickstart_worker.read_text()[-2000:]}"
    # The site as served: version 1, then 2, then 1 again after the rollback.
    served = re.findall(r"<h1>Hello, version (\d)</h1>", run.stdout)
    assert served == ["1", "2", "1"], output[-3000:]
    assert re.search(r"^3 succeeded rollback ", run.stdout, flags=re.MULTILINE), output[-3000:]
    assert '"status": "pending"' in run.stdout  # the invalidation, accepted
    assert re.search(r"^msg_\S+ ping$", run.stdout, flags=re.MULTILINE), output[-3000:]  # signed, verified
    assert re.search(r"^x-ratelimit-limit: 1000", run.stdout, flags=re.IGNORECASE | re.MULTILINE), output[-3000:]
    assert '"requests"' in run.stdout
    assert raw_key not in output
