"""Schemathesis's own runner against the live test server, as a client meets the API: HTTP to a real
server, a real API key, the published /api/schema/, positive and negative data, every check.

The checks hold the schema to the behaviour both ways: a documented status for every answer (the error
shape on each), schema-valid requests accepted and schema-violating ones refused, 405 for a method a path
does not list, 401 without the key. Detail routes get the ids of the key's own objects (config below), so
they run on real rows, not only on 404s. About 20 s on 2 cores: a few examples per operation.
"""

import re
import subprocess
import sys

import pytest

from tests.hardening.conftest import tenant_with_everything

pytestmark = pytest.mark.django_db(transaction=True)

MAX_EXAMPLES = 4
SEED = 20261203

# Refusals beyond Schemathesis's default list: a body or query string over the limit (413, 414).
NEGATIVE_REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "413", "414", "415", "422", "428", "429"]
# Where valid input depends on more than its shape, a schema-valid request may get the operation's 400
# (which names the field): the bundle must be a tar.gz or zip archive, the webhook URL must resolve to a
# public address, the rollback target must be one of the website's deployments, and a key's own limit must
# be below its tenant's.
DEPENDS_ON_THE_WORLD = [
    ("POST", "/api/v1/websites/{id}/deployments/"),
    ("POST", "/api/v1/webhooks/endpoints/"),
    ("PATCH", "/api/v1/webhooks/endpoints/{id}/"),
    ("POST", "/api/v1/websites/{id}/rollback/"),
    ("POST", "/api/v1/keys/"),
]


def _config(a) -> str:
    lines = [
        "[checks]",
        f"negative_data_rejection.expected-statuses = {NEGATIVE_REFUSALS!r}".replace("'", '"'),
        "",
    ]
    for method, path in DEPENDS_ON_THE_WORLD:
        lines += [
            "[[operations]]",
            f'include-method = "{method}"',
            f'include-path = "{path}"',
            'checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]',
            "",
        ]
    # The key's own objects in the detail routes (generated ids would only ever find nothing).
    ids = {
        r"^/api/v1/websites/\{id\}/": a.website,
        r"^/api/v1/websites/\{website_id\}/": a.website,
        r"^/api/v1/deployments/\{id\}/": a.deployment,
        r"^/api/v1/keys/\{id\}/": a.key,
        r"^/api/v1/webhooks/endpoints/\{id\}/": a.endpoint,
        r"^/api/v1/webhooks/deliveries/\{id\}/": a.delivery,
    }
    for pattern, value in ids.items():
        name = "website_id" if "website_id" in pattern else "id"
        lines += [
            "[[operations]]",
            f"include-path-regex = '{pattern}'",
            f'parameters = {{ "path.{name}" = "{value}" }}',
            "",
        ]
    lines += [
        "[[operations]]",
        r"include-path-regex = '^/api/v1/websites/\{website_id\}/invalidations/\{invalidation_id\}/'",
        f'parameters = {{ "path.website_id" = "{a.website}", "path.invalidation_id" = "{a.invalidation}" }}',
        "",
    ]
    return "\n".join(lines)


def _schemathesis(
    url: str, config, tmp_path, max_examples: int, options: list[str], *, at_least: int, every_operation=True
) -> str:
    """Run the Schemathesis CLI (every check, positive and negative data) against the live server's schema;
    fail unless it found nothing and passed at least `at_least` generated cases (and, by default, tested
    every operation); return its output for further checks."""
    run = subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", f"{url}/api/schema/",
            *options, "--checks", "all", "--mode", "all", "--max-examples", str(max_examples), "--seed", str(SEED),
            "--workers", "1", "--no-shrink", "--continue-on-failure", "--output-sanitize", "true",
            "--report-dir", str(tmp_path / "report"),
        ],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    (tmp_path / "schemathesis.out").write_text(run.stdout + run.stderr)
    summary = run.stdout[run.stdout.find("FAILURES") :][:20000] + run.stdout[-3000:]
    assert run.returncode == 0, summary
    if every_operation:
        selected, tested = re.search(r"Selected: (\d+)/(\d+)", run.stdout), re.search(r"Tested: (\d+)", run.stdout)
        assert selected and tested and selected[1] == selected[2] == tested[1], summary
    generated = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert generated and generated[1] == generated[2] and int(generated[1]) > at_least, summary
    return run.stdout


def test_schemathesis_finds_nothing_against_the_live_server(
    live_server, hardening_webhooks, fresh_cache, settings, tmp_path
):
    from apikeys import services as apikey_services
    from apikeys.scopes import SCOPES
    from tenants.models import Tenant

    a = tenant_with_everything("live-a")
    tenant_with_everything("live-b")  # another tenant's rows exist, so "not found" is not "nothing there"
    Tenant.objects.filter(pk=a.tenant).update(tier="enterprise")
    _, raw_key = apikey_services.apikey_create(tenant=Tenant.objects.get(pk=a.tenant), name="st", scopes=list(SCOPES))
    # The live server's thread reads what the test wrote: from the primary (the test's transaction-free
    # writes are on it; pytest-django allows that connection only).
    settings.DATABASE_ROUTERS = []
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(a))

    auth = ["--header", f"Authorization: Bearer {raw_key}"]
    _schemathesis(live_server.url, config, tmp_path, MAX_EXAMPLES, auth, at_least=500)


# --- the operators' endpoints, with a platform admin's session ----------------------------------------

OPERATOR_MAX_EXAMPLES = 12
# The operators' endpoints work on a tenant of their own: suspending, re-tiering and re-configuring it
# changes nothing another test (or the run with a tenant's key above) relies on.
OPERATOR_IDS = {
    r"^/api/v1/tenants/\{id\}/": "tenant",
    r"^/api/v1/tenants/\{tenant_id\}/": "tenant",
    r"^/api/v1/websites/\{website_id\}/": "website",
}


def _operator_config(ops) -> str:
    lines = [
        "[checks]",
        f"negative_data_rejection.expected-statuses = {NEGATIVE_REFUSALS!r}".replace("'", '"'),
        "",
        # A CDN backend must be one of this platform's CDN_BACKENDS (the example's `cloudfront` is not here).
        "[[operations]]",
        'include-method = "PATCH"',
        r"include-path-regex = '^/api/v1/websites/\{website_id\}/cdn/'",
        'checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]',
        "",
    ]
    for pattern, name in OPERATOR_IDS.items():
        param = "website_id" if "website_id" in pattern else ("tenant_id" if "tenant_id" in pattern else "id")
        lines += [
            "[[operations]]",
            f"include-path-regex = '{pattern}'",
            f'parameters = {{ "path.{param}" = "{getattr(ops, name)}" }}',
            "",
        ]
    return "\n".join(lines)


def test_schemathesis_fuzzes_the_operators_endpoints_past_authorization(
    live_server, hardening_webhooks, fresh_cache, settings, tmp_path, staff_user
):
    """The Operators tag with a platform admin's session (a key only ever gets their 403): every check, and
    the operators' actions were reached (audited), not refused at the door."""
    from django.test import Client

    from console.models import AuditLogEntry

    ops = tenant_with_everything("live-ops")
    settings.DATABASE_ROUTERS = []
    browser = Client()
    browser.force_login(staff_user)
    csrf = "c" * 32  # DRF's session authentication wants the cookie and the header to match on writes
    cookie = f"sessionid={browser.cookies['sessionid'].value}; csrftoken={csrf}"
    config = tmp_path / "schemathesis.toml"
    config.write_text(_operator_config(ops))

    output = _schemathesis(
        live_server.url, config, tmp_path, OPERATOR_MAX_EXAMPLES,
        ["--include-tag", "Operators", "--header", f"Cookie: {cookie}", "--header", f"X-CSRFToken: {csrf}",
         # The session travels as a Cookie header Schemathesis does not know for the credential: what it
         # sends "without auth" still carries it. 401 without credentials is the run above's (and
         # tests/platform_site/test_api_statuses.py's) to prove.
         "--exclude-checks", "ignored_auth"],
        at_least=100, every_operation=False,
    )  # fmt: skip
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    assert selected and int(selected[1]) >= 9, output[-3000:]
    reached = set(
        AuditLogEntry.objects.filter(source="api", actor_username=staff_user.username, outcome="done")
        .values_list("action", flat=True)
    )  # fmt: skip
    assert {"tenant.create", "tenant.suspend", "tenant.reactivate", "website.configure_cdn"} <= reached, (
        sorted(reached), output[-3000:],
    )  # fmt: skip
