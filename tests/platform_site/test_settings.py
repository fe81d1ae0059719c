"""Embedded defaults with nothing set; real mode refuses to start without its secrets."""

import json
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT

PROBE = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'db': s.DATABASES['default']['ENGINE'], 'cache': s.CACHES['default']['BACKEND'], "
    "'eager': s.CELERY_TASK_ALWAYS_EAGER, 'cdn': s.CDN_BACKENDS['default']['BACKEND'], "
    "'backup': s.BACKUP_ENGINE, 'replicas': s.DATABASE_REPLICAS, 'real': s.REAL_MODE}))"
)
REAL_VARIABLES = ("DATABASE_URL", "DATABASE_REPLICA_URLS", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SECRET_KEY",
                  "FIELD_ENCRYPTION_KEY", "S3_BUCKET", "S3_ENDPOINT_URL", "CDN_BACKENDS", "BACKUP_ENGINE")  # fmt: skip


def _run(env_overrides: dict, tmp_path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in REAL_VARIABLES}
    env.update({"DJANGO_SETTINGS_MODULE": "platform_site.settings", "PLATFORM_VAR_DIR": str(tmp_path), **env_overrides})
    return subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=REPO_ROOT, capture_output=True, text=True)


def test_embedded_defaults(tmp_path):
    result = _run({}, tmp_path)
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout.strip().splitlines()[-1])
    assert config == {
        "db": "django_prometheus.db.backends.sqlite3",
        "cache": "django.core.cache.backends.locmem.LocMemCache",
        "eager": True,
        "cdn": "cdn.backends.dummy.DummyBackend",
        "backup": "sqlite",
        "replicas": [],
        "real": False,
    }
    # the embedded secret is generated once and kept out of the repository
    assert (tmp_path / ".secret_key").stat().st_mode & 0o077 == 0


def test_real_mode_switched_on_by_variables(tmp_path):
    result = _run(
        {
            "DATABASE_URL": "postgres://u@127.0.0.1:1/x",
            "DATABASE_REPLICA_URLS": "postgres://u@127.0.0.1:2/x,postgres://u@127.0.0.1:3/x",
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "CELERY_BROKER_URL": "redis://127.0.0.1:1/1",
            "DJANGO_SECRET_KEY": "k" * 50,
            "FIELD_ENCRYPTION_KEY": "x",
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout.strip().splitlines()[-1])
    assert config["db"] == "django_prometheus.db.backends.postgresql"
    assert config["cache"].endswith("RedisCache") and config["eager"] is False
    assert config["replicas"] == ["replica_1", "replica_2"] and config["real"] is True
    assert config["backup"] == "pgbackrest"


def test_real_mode_missing_secret_stops_with_one_line(tmp_path):
    for missing, present in (
        ("DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEY"),
        ("FIELD_ENCRYPTION_KEY", "DJANGO_SECRET_KEY"),
    ):
        result = _run({"DATABASE_URL": "postgres://u@127.0.0.1:1/x", present: "value"}, tmp_path)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and missing in lines[0], result.stderr
        assert "Traceback" not in result.stderr


def test_a_number_that_does_not_parse_stops_with_one_line_naming_it(tmp_path):
    for variable, value, expected in (
        ("WEBHOOKS_BATCH_SIZE", "lots", "error: WEBHOOKS_BATCH_SIZE='lots' is not a whole number"),
        ("BEAT_HEARTBEAT_SECONDS", "abc", "error: BEAT_HEARTBEAT_SECONDS='abc' is not a number"),
        ("BEAT_HEARTBEAT_SECONDS", "12abc", "error: BEAT_HEARTBEAT_SECONDS='12abc' is not a number"),  # not 12
        ("USAGE_ROLLUP_INTERVAL_SECONDS", "0", "error: USAGE_ROLLUP_INTERVAL_SECONDS must be more than 0 seconds"),
        ("BEAT_HEARTBEAT_SECONDS", "-5", "error: BEAT_HEARTBEAT_SECONDS must be more than 0 seconds"),
    ):
        result = _run({variable: value}, tmp_path)
        assert (result.returncode, result.stderr.strip()) == (2, expected)
