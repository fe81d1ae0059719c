"""Embedded mode (README command a: SQLite, eager Celery) delivers webhooks too, through the ORM's paths."""

import json
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT
from tests.platform_site.test_settings import REAL_VARIABLES

SCRIPT = """
import json, sys
import django
django.setup()
from django.core.management import call_command
from django.db import connection, transaction
call_command("migrate", verbosity=0)
from tenants import services as tenants
from webhooks import services
from webhooks.models import Delivery
base = sys.argv[1]
tenant = tenants.tenant_create(name="Embedded", slug="embedded")
ok, _ = services.endpoint_create(tenant=tenant, url=base + "/ok", event_types=["*"])
failing, _ = services.endpoint_create(tenant=tenant, url=base + "/fail", event_types=["tenant.*"])
services.endpoint_ping(endpoint=ok)
with transaction.atomic():
    services.event_record(tenant=tenant, type="tenant.suspended", data={"tenant": {"slug": "embedded"}})
rows = Delivery.objects.order_by("created_at").values_list("event__type", "endpoint__url", "status", "attempt_count")
print(json.dumps({"vendor": connection.vendor, "deliveries": [[t, u.removeprefix(base), s, n] for t, u, s, n in rows]}))
"""


def test_webhooks_are_delivered_on_embedded_defaults(receiver, tmp_path):
    receiver.script["/fail"] = [("status", 500)]
    env = {k: v for k, v in os.environ.items() if k not in REAL_VARIABLES}
    env.update({
        "DJANGO_SETTINGS_MODULE": "platform_site.settings", "PLATFORM_VAR_DIR": str(tmp_path), "LOG_LEVEL": "ERROR",
        "WEBHOOKS_ALLOW_HTTP": "true", "WEBHOOKS_ALLOWED_NETWORKS": "127.0.0.0/8",
    })  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, f"http://127.0.0.1:{receiver.port}"],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["vendor"] == "sqlite"
    assert sorted(outcome["deliveries"]) == [
        ["ping", "/ok", "succeeded", 1],
        ["tenant.suspended", "/fail", "pending", 1],  # its retry is due in 5 s
        ["tenant.suspended", "/ok", "succeeded", 1],
    ]
    assert [r.path for r in receiver.received("/ok")] == ["/ok", "/ok"]
    assert json.loads(receiver.received("/fail")[0].body)["data"] == {"tenant": {"slug": "embedded"}}
