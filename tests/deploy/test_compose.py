"""Static checks of deploy/compose (these machines have no Docker engine): the file passes the Compose
Specification's schema, is consistent with the settings and the code (variables, commands, queues), every
file it mounts exists, and the pieces it wires together agree (pgBackRest paths, Varnish, Prometheus).
Where a piece can run here (the settings, the VCL renderer with varnishd, promtool), it is run for real.
Longer than ~400 lines: one file, so each check reads the one Compose file the same way."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet

from platform_site.celery import QUEUES
from tests.conftest import REPO_ROOT
from tests.deploy.commands import manage_py_parses
from tests.deploy.settings_env import required_in_real_mode, settings_variables

COMPOSE_DIR = REPO_ROOT / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "docker-compose.yml"
COMPOSE_ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
PLATFORM_ENV_EXAMPLE = COMPOSE_DIR / "platform.env.example"
DJANGO_SERVICES = {
    "migrate",
    "web",
    "worker-default",
    "worker-webhooks",
    "worker-cdn",
    "backups-setup",
    "worker-backups",
    "beat",
}
# Added by the observability issue (deploy/prometheus, deploy/grafana); checked as soon as they exist.
OBSERVABILITY_DIRS = ("deploy/prometheus", "deploy/grafana")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def documented(path: Path) -> dict[str, str]:
    """NAME -> example value for every `NAME=` line, commented out (a default) or not."""
    names = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            names.setdefault(match.group(1), match.group(2))
    return names


def set_in(path: Path) -> dict[str, str]:
    """The variables a copy of the example sets (uncommented lines), as compose's env_file reads them."""
    values = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default}, ${NAME:?error} and $$ (enough of it for these files)."""

    def replace(match: re.Match) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        current = variables.get(name, "")
        if operator == ":?" and not current:
            raise ValueError(f"{name}: {argument}")
        if operator == ":-" and not current:
            return argument
        return current

    interpolated = re.sub(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-?])([^}]*))?\}", replace, value)
    return interpolated.replace("$$", "$")


def service_environment(service: dict, compose_variables: dict[str, str]) -> dict[str, str]:
    """What the container's process sees: env_file first, then `environment` (which wins), interpolated."""
    environment = {}
    for env_file in service.get("env_file", []):
        assert env_file == "platform.env"
        environment.update(set_in(PLATFORM_ENV_EXAMPLE))
    environment.update({key: str(value) for key, value in (service.get("environment") or {}).items()})
    return {key: interpolate(value, compose_variables) for key, value in environment.items()}


def example_compose_variables() -> dict[str, str]:
    """A filled-in .env: every secret given a value, the rest at their defaults."""
    return {name: f"example-{name.lower().replace('_', '-')}" for name in set_in(COMPOSE_ENV_EXAMPLE)}


def filled_platform_secrets() -> dict[str, str]:
    return {"DJANGO_SECRET_KEY": "x" * 50, "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode()}


def bind_mounts(service: dict) -> list[tuple[str, str, str]]:
    """(source, target, mode) of the short-syntax volumes that are host paths."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target, *mode = volume.split(":")
        if source.startswith((".", "/")):
            mounts.append((source, target, mode[0] if mode else "rw"))
    return mounts


def named_volumes(service: dict) -> dict[str, str]:
    """{container path: volume name} of the named volumes a service mounts."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if not source.startswith((".", "/")):
            found[target] = source
    return found


# --- the file itself ---------------------------------------------------------------------------------
def _check_compose_schema(path: Path) -> subprocess.CompletedProcess:
    checker = Path(sys.executable).with_name("check-jsonschema")
    return subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(path)], capture_output=True, text=True
    )


def test_compose_file_passes_the_compose_specification_schema():
    result = _check_compose_schema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_service(tmp_path, compose):
    broken = json.loads(json.dumps(compose))
    broken["services"]["web"]["depends_on"]["migrate"]["condition"] = "service_finished"
    broken["services"]["web"]["restart_policy"] = "always"  # a Swarm key in the wrong place
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    result = _check_compose_schema(path)
    assert result.returncode != 0
    assert "restart_policy" in result.stdout + result.stderr


def test_the_stack_has_every_part(services):
    assert set(services) == DJANGO_SERVICES | {
        "postgres-primary",
        "postgres-replica",
        "redis",
        "varnish",
        "prometheus",
        "grafana",
    }
    # The Django services are exactly those that read platform.env.
    assert {name for name, service in services.items() if "platform.env" in service.get("env_file", [])} == (
        DJANGO_SERVICES
    )


# --- variables ------------------------------------------------------------------------------------------
def test_every_variable_the_settings_read_is_documented():
    read = settings_variables()
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "PGBACKREST_REPO1_TYPE", "WEBHOOKS_BATCH_SIZE"} <= set(read)
    missing = set(read) - set(documented(PLATFORM_ENV_EXAMPLE)) - set(documented(COMPOSE_ENV_EXAMPLE))
    assert not missing, f"settings read variables no environment template documents: {sorted(missing)}"


def test_the_documentation_check_sees_every_way_settings_read_a_variable():
    source = """
import environ
env = environ.Env()
def _price(name, default):
    return env.str(name, default=default)
A = env("PLAIN_CALL", default="")
B = env.int("TYPED_CALL", default=1)
C = [env.str(f"PATTERNED_{n}_NAME", default="") for n in range(1, 3)]
D = _price("THROUGH_A_HELPER", "0.1")
REAL_MODE_VARIABLES = ("LISTED_NAME",)
"""
    read = settings_variables(source)
    assert {"PLAIN_CALL", "TYPED_CALL", "PATTERNED_1_NAME", "THROUGH_A_HELPER", "LISTED_NAME"} <= set(read)
    assert not {"PLAIN_CALL", "THROUGH_A_HELPER"} & set(documented(PLATFORM_ENV_EXAMPLE))


def test_every_documented_platform_variable_is_read_by_the_code():
    read = set(settings_variables())
    sources = "\n".join(
        path.read_text()
        for app in (
            "platform_site",
            "core",
            "dbrouting",
            "observability",
            "tenants",
            "apikeys",
            "webhooks",
            "cdn",
            "backups",
        )
        for path in (REPO_ROOT / app).rglob("*.py")
    )
    stale = {name for name in documented(PLATFORM_ENV_EXAMPLE) if name not in read and f'"{name}"' not in sources}
    assert not stale, f"platform.env.example documents variables nothing reads: {sorted(stale)}"


def test_every_compose_interpolation_is_documented_in_the_env_template():
    used = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", COMPOSE.read_text()))
    assert {"POSTGRES_PASSWORD", "METRICS_TOKEN", "GRAFANA_ADMIN_PASSWORD"} <= used
    missing = used - set(documented(COMPOSE_ENV_EXAMPLE))
    assert not missing, f"docker-compose.yml uses variables .env.example does not document: {sorted(missing)}"
    # Secrets have no default: compose refuses to start without them.
    for secret in ("POSTGRES_PASSWORD", "REPLICATION_PASSWORD", "METRICS_TOKEN", "GRAFANA_ADMIN_PASSWORD"):
        assert re.search(r"\$\{" + secret + r":\?", COMPOSE.read_text()), secret
        assert set_in(COMPOSE_ENV_EXAMPLE)[secret] == "", f"{secret} must not ship with a value"


def test_every_django_service_gets_what_real_mode_requires(services):
    required = required_in_real_mode()
    assert {"DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEY", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"} <= required
    for name in DJANGO_SERVICES:
        provided = set(services[name].get("environment") or {}) | set(set_in(PLATFORM_ENV_EXAMPLE))
        assert required <= provided, f"{name} lacks {sorted(required - provided)}"
        assert "DATABASE_REPLICA_URLS" in provided, name
    # The secrets are in the template, uncommented and empty: an unfilled copy fails loudly at start.
    for secret in ("DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEY"):
        assert set_in(PLATFORM_ENV_EXAMPLE)[secret] == ""


def test_an_unfilled_env_is_refused():
    with pytest.raises(ValueError, match="POSTGRES_PASSWORD"):
        interpolate("postgres://platform:${POSTGRES_PASSWORD:?set it}@db/platform", {})


def _settings_as_seen_by(service: dict, tmp_path: Path, probe: str) -> dict:
    environment = service_environment(service, example_compose_variables())
    environment.update(filled_platform_secrets())
    environment["PLATFORM_VAR_DIR"] = str(tmp_path / "var")
    # PROMETHEUS_MULTIPROC_DIR is the container's tmpfs; here a folder of the test's own.
    if "PROMETHEUS_MULTIPROC_DIR" in environment:
        environment["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
        (tmp_path / "metrics").mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "platform_site.settings", **environment}
    script = "import django, json; django.setup(); from django.conf import settings\n" + probe
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_web_environment_puts_the_settings_in_real_mode(services, tmp_path):
    seen = _settings_as_seen_by(
        services["web"],
        tmp_path,
        "from cdn.backends import cdn_backends\n"
        "backend = cdn_backends['default']\n"
        "print(json.dumps({'real': settings.REAL_MODE, 'eager': settings.CELERY_TASK_ALWAYS_EAGER,\n"
        "  'hosts': {a: d['HOST'] for a, d in settings.DATABASES.items()},\n"
        "  'cache': settings.CACHES['default']['LOCATION'], 'broker': settings.CELERY_BROKER_URL,\n"
        "  'allowed': settings.ALLOWED_HOSTS, 'cdn': type(backend).__name__,\n"
        "  'nodes': [n.geturl() for n in backend.nodes]}))",
    )
    assert seen["real"] is True and seen["eager"] is False
    assert seen["hosts"] == {"default": "postgres-primary", "replica_1": "postgres-replica"}
    assert seen["cache"] == "redis://redis:6379/0" and seen["broker"] == "redis://redis:6379/1"
    assert seen["cdn"] == "VarnishBackend" and seen["nodes"] == ["http://varnish:80"]
    # Prometheus scrapes web:8000 and the health check calls 127.0.0.1: both must pass host validation.
    assert {"web", "127.0.0.1"} <= set(seen["allowed"])


def test_the_backups_worker_configures_pgbackrest_like_the_primary_archives(services, tmp_path):
    worker, primary = services["worker-backups"], services["postgres-primary"]
    seen = _settings_as_seen_by(
        worker,
        tmp_path,
        "from backups.engines import get_engine\n"
        "engine = get_engine()\n"
        "print(json.dumps({'engine': settings.BACKUP_ENGINE, 'config': str(engine.config_path),\n"
        "  'stanza': engine.stanza, 'pg_data': engine.pg_data, 'socket': engine.pg_socket_dir,\n"
        "  'os_user': engine.os_user, 'repos': engine.repos, 'rendered': engine.render_config()}))",
    )
    assert seen["engine"] == "pgbackrest"
    # The primary's archive_command (archive.conf, included at initialisation) uses the same file and stanza.
    archive_mount = {target: source for source, target, _ in bind_mounts(primary)}[
        primary["environment"]["ARCHIVE_CONFIG"]
    ]
    archive_conf = (COMPOSE_DIR / archive_mount).read_text()
    command = re.search(r"^archive_command = '(.+)'$", archive_conf, re.M).group(1)
    assert f"--config={seen['config']}" in command and f"--stanza={seen['stanza']}" in command
    # Same volumes at the same paths as the primary: data (read-only here), socket, config, repository.
    worker_volumes, primary_volumes = named_volumes(worker), named_volumes(primary)
    for path in (seen["pg_data"], seen["socket"], str(Path(seen["config"]).parent), seen["repos"][0]["path"]):
        assert worker_volumes.get(path) and worker_volumes[path] == primary_volumes.get(path), path
    assert f"primary-data:{seen['pg_data']}:ro" in worker["volumes"]
    assert f"pg1-path={seen['pg_data']}" in seen["rendered"]
    # As the data directory's owner, from the primary's image; two processes (checks beside a backup).
    assert worker["user"] == seen["os_user"] == "postgres"
    assert worker["image"] == primary["image"] and worker["build"] == primary["build"]
    assert worker["command"][worker["command"].index("--concurrency") + 1] == "2"
    assert services["backups-setup"]["command"][-2:] == ["backup", "setup"]
    assert worker["depends_on"]["backups-setup"]["condition"] == "service_completed_successfully"


# --- commands -------------------------------------------------------------------------------------------
def test_service_commands_name_what_exists(services):
    import importlib

    queues_served = []
    for name in DJANGO_SERVICES:
        command = services[name]["command"]
        if command[0] == "gunicorn":
            module, attribute = command[1].split(":")
            assert callable(getattr(importlib.import_module(module), attribute))
        elif command[0] == "celery":
            assert command[1:3] == ["-A", "platform_site"], name
            assert importlib.import_module("platform_site.celery").app.main == "platform_site"
            if command[3] == "worker":
                queues = command[command.index("-Q") + 1].split(",")
                assert name == f"worker-{queues[0]}", "a worker service is named after its queue"
                queues_served += queues
            else:
                assert command[3] == "beat", name
        else:
            assert command[:2] == ["python", "manage.py"], name
            manage_py_parses(command[2:])
    # One worker service per queue, every queue served.
    assert sorted(queues_served) == sorted(QUEUES)
    beats = [name for name in DJANGO_SERVICES if services[name]["command"][3:4] == ["beat"]]
    assert beats == ["beat"] and "deploy" not in services["beat"]


def test_a_command_check_catches_a_missing_command():
    with pytest.raises(AssertionError, match="no such command"):
        manage_py_parses(["backups", "setup"])
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        manage_py_parses(["backup", "set-up"])


def test_the_platform_starts_after_migrations_and_its_dependencies(services):
    for name in DJANGO_SERVICES - {"migrate", "backups-setup"}:
        depends_on = services[name]["depends_on"]
        first = "backups-setup" if name == "worker-backups" else "migrate"
        assert depends_on[first]["condition"] == "service_completed_successfully", name
        assert depends_on["redis"]["condition"] == "service_healthy", name
    assert services["migrate"]["depends_on"]["postgres-primary"]["condition"] == "service_healthy"


# --- mounted files ------------------------------------------------------------------------------------------
def test_every_file_mounted_from_the_repository_exists(services):
    checked = 0
    for name, service in services.items():
        for source, _target, mode in bind_mounts(service):
            path = (COMPOSE_DIR / source).resolve()
            relative = path.relative_to(REPO_ROOT).as_posix()
            assert mode == "ro", f"{name} mounts {source} writable"
            if any(relative.startswith(d) and not (REPO_ROOT / d).exists() for d in OBSERVABILITY_DIRS):
                continue  # the observability issue's files, not merged yet
            assert path.exists(), f"{name} mounts {source}, which does not exist"
            checked += 1
    assert checked >= 6


def test_observability_files_are_wired_to_the_mount_points(services):
    prometheus, grafana = services["prometheus"], services["grafana"]
    config = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text())
    rule_mounts = {target for _, target, _ in bind_mounts(prometheus)}
    assert set(config["rule_files"]) <= rule_mounts
    # Same job names as deploy/prometheus/prometheus.yml: its rules, alerts and the dashboards use them.
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"platform-web", "platform-worker"}
    upstream = REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml"
    if upstream.exists():
        assert {job["job_name"] for job in yaml.safe_load(upstream.read_text())["scrape_configs"]} == set(jobs)
    # Targets are this stack's services, on the ports they serve metrics on, with the token as a secret file.
    assert jobs["platform-web"]["static_configs"][0]["targets"] == ["web:8000"]
    worker_names = jobs["platform-worker"]["dns_sd_configs"][0]["names"]
    assert sorted(worker_names) == sorted(f"worker-{queue}" for queue in QUEUES)
    for worker in worker_names:
        assert services[worker]["environment"]["CELERY_METRICS_PORT"] == str(
            jobs["platform-worker"]["dns_sd_configs"][0]["port"]
        )
        assert services[worker]["environment"]["CELERY_METRICS_ADDRESS"] == "0.0.0.0"  # noqa: S104 - inside the container
    for job in jobs.values():
        assert job["authorization"]["credentials_file"] == "/run/secrets/metrics_token"
    assert prometheus["secrets"] == ["metrics_token"]
    # Grafana: provisioning and dashboards where deploy/grafana's provider looks for them.
    grafana_mounts = {source: target for source, target, _ in bind_mounts(grafana)}
    assert grafana_mounts["../grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = REPO_ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "platform.yml"
    if provider.exists():
        path = yaml.safe_load(provider.read_text())["providers"][0]["options"]["path"]
        assert grafana_mounts["../grafana/dashboards"] == path
    assert grafana["environment"]["PROMETHEUS_URL"] == "http://prometheus:9090"


def test_prometheus_config_passes_promtool():
    promtool = "promtool"
    result = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(COMPOSE_DIR / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- Varnish ------------------------------------------------------------------------------------------------
def test_varnish_renders_the_platform_vcl_for_the_stack_and_it_compiles(services, tmp_path):
    varnish = services["varnish"]
    mounts = {target: source for source, target, _ in bind_mounts(varnish)}
    script = " ".join(varnish["entrypoint"][2:])
    render, template, output = shlex.split(script.split("&&")[0])[1:4]
    assert (COMPOSE_DIR / mounts[template]).resolve() == REPO_ROOT / "deploy" / "varnish" / "default.vcl"
    assert f"-f {output}" in script
    environment = service_environment(varnish, example_compose_variables())
    assert environment["VARNISH_BACKEND_HOST"] == "web"
    assert (
        environment["VARNISH_BACKEND_PORT"]
        == services["web"]["command"][services["web"]["command"].index("--bind") + 1].rsplit(":", 1)[1]
    )
    subnet = environment["VARNISH_PURGERS"]
    compose = yaml.safe_load(COMPOSE.read_text())
    assert interpolate(compose["networks"]["default"]["ipam"]["config"][0]["subnet"], {}) == subnet

    def rendered(backend_host: str) -> str:
        target = tmp_path / f"{backend_host}.vcl"
        subprocess.run(
            ["sh", str(COMPOSE_DIR / mounts[render]), str(COMPOSE_DIR / mounts[template]), str(target)],
            env={"PATH": os.environ["PATH"], **environment, "VARNISH_BACKEND_HOST": backend_host},
            check=True,
        )
        return str(target)

    vcl = Path(rendered("web")).read_text()
    address, bits = subnet.split("/")
    assert '.host = "web";' in vcl and '.port = "8000";' in vcl
    assert f'"{address}"/{bits};' in vcl.split("acl purgers {")[1].split("}")[0]
    # varnishd resolves the backend when it compiles ("web" exists only on the compose network), and reads
    # the file as the varnish user, which cannot enter pytest's private tmp_path.
    shared = Path(tempfile.mkdtemp(prefix="compose-vcl-", dir="/var/tmp"))
    try:
        shared.chmod(0o755)
        compiled = shared / "platform.vcl"
        shutil.copy(rendered("127.0.0.1"), compiled)
        compiled.chmod(0o644)
        result = subprocess.run(
            ["varnishd", "-C", "-n", str(shared / "work"), "-f", str(compiled)], capture_output=True, text=True
        )
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_vcl_renderer_refuses_a_missing_backend(tmp_path):
    result = subprocess.run(
        ["sh", str(REPO_ROOT / "deploy" / "varnish" / "render-vcl.sh"), "default.vcl", str(tmp_path / "out.vcl")],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "VARNISH_BACKEND_HOST" in result.stderr
