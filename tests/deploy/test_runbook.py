"""deploy/README.md names only what exists: every `manage.py` command line parses with the real command's
parser, every API path resolves, every variable is one the platform or the deploy files know, every beat
schedule is defined, and (once the observability files are there) every alert and dashboard panel exists."""

import json
import re
import shlex

import pytest
from django.urls import Resolver404, resolve

from platform_site.celery import app as celery_app
from tests.conftest import REPO_ROOT
from tests.deploy.commands import manage_py_parses
from tests.deploy.settings_env import settings_variables

RUNBOOK = REPO_ROOT / "deploy" / "README.md"


@pytest.fixture(scope="module")
def runbook() -> str:
    return RUNBOOK.read_text()


def inline_code(text: str) -> list[str]:
    return [" ".join(span.split()) for span in re.findall(r"(?<!`)`([^`]+)`(?!`)", text)]


def code_lines(text: str) -> list[str]:
    """Lines of indented code blocks (the runbook's shell examples)."""
    return [line.strip() for line in text.splitlines() if re.match(r"^ {4,}\S", line) and "`" not in line]


def manage_py_commands(text: str) -> list[list[str]]:
    commands = []
    for snippet in inline_code(text) + code_lines(text):
        for match in re.finditer(r"manage\.py (.+?)(?:\s+#.*)?$", snippet):
            commands.append(shlex.split(match.group(1)))
    return commands


def test_every_manage_py_command_in_the_runbook_exists_and_parses(runbook):
    commands = manage_py_commands(runbook)
    named = {command[0] for command in commands}
    assert len(commands) >= 15 and {"backup", "restore", "apikey", "cdn", "migrate", "createsuperuser"} <= named
    for command in commands:
        manage_py_parses(command)


def test_the_command_check_catches_a_wrong_subcommand():
    from django.core.management import CommandError

    (command,) = manage_py_commands("`manage.py backup restore-tenant --tenant T`")
    with pytest.raises(CommandError):  # --export is required
        manage_py_parses(command)
    (command,) = manage_py_commands("    manage.py backups list   # a typo")
    with pytest.raises(AssertionError, match="no such command"):
        manage_py_parses(command)


def test_every_api_path_in_the_runbook_resolves(runbook):
    paths = set(re.findall(r"(/api/v1/[\w/\-.]*)", runbook))
    assert len(paths) >= 6
    for path in paths:
        try:
            # ID stands for an object's id: the routers accept UUIDs (and some integers) there.
            resolve(path.replace("/ID/", "/00000000-0000-4000-8000-000000000001/"))
        except Resolver404:
            pytest.fail(f"deploy/README.md names {path}, which no URL pattern serves")


def test_every_variable_in_the_runbook_is_known(runbook):
    known = set(settings_variables())
    deploy_texts = [
        REPO_ROOT / "deploy" / "compose" / name
        for name in ("docker-compose.yml", ".env.example", "platform.env.example")
    ] + list((REPO_ROOT / "deploy" / "k8s").rglob("*.yaml"))
    deploy_text = "\n".join(path.read_text() for path in deploy_texts)
    variables = {token for token in inline_code(runbook) if re.fullmatch(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)+", token)}
    variables |= set(re.findall(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)=", runbook))
    assert {"FIELD_ENCRYPTION_KEY", "DJANGO_SECRET_KEY_FALLBACKS", "WEBHOOKS_RETRY_SCHEDULE"} <= variables
    unknown = {name for name in variables if name not in known and not re.search(rf"\b{name}\b", deploy_text)}
    assert not unknown, f"deploy/README.md names variables nothing reads or sets: {sorted(unknown)}"


def test_every_beat_schedule_in_the_runbook_exists(runbook):
    named = set(re.findall(r"beat: `([\w-]+)`", runbook)) | set(re.findall(r"\(`([\w-]+)`, every", runbook))
    assert named and named <= set(celery_app.conf.beat_schedule), named - set(celery_app.conf.beat_schedule)


def test_alerts_and_panels_in_the_runbook_exist(runbook):
    alerts_file = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"
    dashboards = list((REPO_ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
    if not alerts_file.exists() or not dashboards:
        pytest.skip("deploy/prometheus and deploy/grafana come with the observability issue")
    alerts = set(re.findall(r"alert: (\w+)", alerts_file.read_text()))
    named_alerts = {t for t in inline_code(runbook) if re.fullmatch(r"[A-Z][a-z]+(?:[A-Z0-9][a-z0-9]*)+", t)}
    assert named_alerts and named_alerts <= alerts, named_alerts - alerts
    titles = set()
    for path in dashboards:
        titles |= set(re.findall(r'"title": "([^"]+)"', path.read_text()))
        json.loads(path.read_text())
    section = runbook.split("## Reading the dashboards", 1)[1]
    panels = {name for bold in re.findall(r"\*\*([^*]+)\*\*", section) for name in re.split(r", | / by ", bold)}
    panels -= {"Platform", "Tenant"}  # the dashboards themselves
    expanded = {"Tenants by tier" if name == "tier" else name for name in panels}
    assert expanded <= titles, expanded - titles
