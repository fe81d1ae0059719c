"""The READMEs say what is true: the fault table of tests/hardening/README.md names tests that exist, and
the project README's real mode works when followed literally (it cannot silently rot)."""

import ast
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_ROOT
from tests.helpers import die_with_parent, wait_for

README = Path(__file__).with_name("README.md")


def test_every_test_the_readme_names_exists():
    named = re.findall(r"`(tests/[\w/]+\.py)::(test_\w+)`", README.read_text())
    assert len(named) >= 12
    missing = []
    for path, name in named:
        tree = ast.parse((REPO_ROOT / path).read_text())
        if name not in {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}:
            missing.append(f"{path}::{name}")
    assert not missing, f"README names tests that do not exist: {missing}"


# --- the project README: real mode runs as written -------------------------------------------------

PROJECT_README = REPO_ROOT / "README.md"
# Lines of the real-mode block the test does not run: installing packages, starting the stack (the suite's
# is up), and the worker and beat (they would consume the test run's queues).
NOT_RUN = ("apt-get install", "pip install", "stack up", "celery -A")


def real_mode_commands() -> list[str]:
    section = PROJECT_README.read_text().split("## Real mode on the local stack", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    commands, pending = [], ""
    for line in block.splitlines():
        pending += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            if pending.strip() and not pending.lstrip().startswith("#"):
                commands.append(pending.strip())
            pending = ""
    return commands


def test_the_readme_links_only_to_files_in_the_repository():
    text = PROJECT_README.read_text()
    targets = [target for target in re.findall(r"\]\(([^)\s]+)\)", text) if not target.startswith(("http", "#"))]
    assert targets
    outside = [target for target in targets if target.startswith(("/", "..")) or ".." in Path(target).parts]
    assert not outside, f"README links outside the repository: {outside}"
    missing = [target for target in targets if not (REPO_ROOT / target.split("#")[0]).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"


def test_real_mode_steps_are_complete_and_in_order():
    from tests.deploy.commands import manage_py_parses

    commands = real_mode_commands()

    def position(needle: str) -> int:
        return next(index for index, command in enumerate(commands) if needle in command)

    # Static files are collected before the server starts (without them every admin page fails).
    assert position("stack env") < position("manage.py migrate") < position("manage.py collectstatic")
    assert position("manage.py collectstatic") < position("gunicorn")
    # Local webhook receivers need both settings, before the processes that deliver start.
    assert position("WEBHOOKS_ALLOW_HTTP=true") < position("celery -A platform_site worker")
    assert "WEBHOOKS_ALLOWED_NETWORKS=127.0.0.0/8" in commands[position("WEBHOOKS_ALLOW_HTTP=true")]
    for command in commands:
        words = shlex.split(command, comments=True)
        if ".venv/bin/python" in words and "manage.py" in words:
            manage_py_parses(words[words.index("manage.py") + 1 :])


def _stack_env() -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, "deploy/local/stack", "env"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    return dict(
        shlex.split(line.removeprefix("export "))[0].split("=", 1)
        for line in result.stdout.splitlines()
        if line.startswith("export ")
    )


def test_stack_env_purges_the_stacks_varnish():
    env = _stack_env()
    backends = json.loads(env["CDN_BACKENDS"])
    assert backends["default"]["BACKEND"] == "cdn.backends.varnish.VarnishBackend"
    assert backends["default"]["OPTIONS"]["NODES"] == [env["VARNISH_URL"]]


@pytest.mark.django_db(transaction=True)
def test_real_mode_as_the_readme_runs_it(test_database_env, tmp_path):
    """The README's block from `stack env` to the web server, run by bash as written, on the test
    database and a port of the test's own: the console answers with its assets and the CDN backend
    purges the stack's Varnish."""
    from tests.platform_site.test_embedded_run import free_port

    port = free_port()
    test_db = {name: test_database_env[name] for name in ("DATABASE_URL", "DATABASE_REPLICA_URLS")}
    script = ["set -euo pipefail"]
    for command in real_mode_commands():
        if any(skipped in command for skipped in NOT_RUN):
            continue
        if command.startswith("eval"):
            # After the stack's environment: the test database, a free port, a data folder of the test's own.
            command += "".join(f"\nexport {name}={shlex.quote(value)}" for name, value in test_db.items())
            command += f"\nexport PLATFORM_ORIGIN_PORT={port} PLATFORM_VAR_DIR={shlex.quote(str(tmp_path / 'var'))}"
        if "createsuperuser" in command:
            command += " --no-input"  # the one prompt: answered by DJANGO_SUPERUSER_* below
        if "gunicorn" in command:
            command = "exec " + command.rstrip("&").strip()
        script.append(command)
    env = {name: value for name, value in os.environ.items() if name not in ("CDN_BACKENDS", "LOG_LEVEL")}
    env |= {
        "DJANGO_SUPERUSER_USERNAME": "readme",
        "DJANGO_SUPERUSER_EMAIL": "readme@localhost",
        "DJANGO_SUPERUSER_PASSWORD": "readme-pass-1",
    }
    log_path = tmp_path / "readme.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["bash", "-c", "\n".join(script)], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=die_with_parent,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: process.poll() is not None or _status(f"{base}/healthz") == 200, timeout=240, interval=0.5)
        assert process.poll() is None, log_path.read_text()[-3000:]
        login = httpx.get(f"{base}/admin/login/", timeout=10)
        assert login.status_code == 200, login.text[-2000:]
        # The console theme's stylesheet, versioned by collectstatic (the README's step) and served.
        css = re.search(r'href="(/static/unfold/css/styles\.[0-9a-f]+\.css)"', login.text).group(1)
        assert httpx.get(base + css, timeout=10).status_code == 200
        assert httpx.get(f"{base}/", timeout=10).status_code == 200
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)

    # The environment the README exports purges the stack's Varnish: a real PURGE answered by it.
    probe = (
        "from cdn.backends import cdn_backends; from cdn.backends.base import Site; "
        "backend = cdn_backends['default']; result = backend.invalidate(Site('w1', ('www.readme.test',)), ['/']); "
        "print(type(backend).__name__, result.completed)"
    )
    result = subprocess.run(
        ["bash", "-c", f'eval "$({sys.executable} deploy/local/stack env)" && {sys.executable} manage.py shell -c "{probe}"'],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    # The last line: Django's shell may first say how many objects it imported.
    assert result.stdout.strip().splitlines()[-1].split() == ["VarnishBackend", "True"]


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0
