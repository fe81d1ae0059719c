"""Settings: the one place that reads the environment, as one ordered file.

With nothing set, the platform runs embedded (SQLite, local-memory cache, eager Celery, local files,
dummy CDN). Each real component is switched on by its variable alone; see the README's table.

Longer than the ~400 lines a module should have, on purpose: every setting and the variable it reads
stand in one file, grouped by integration in this order: mode and secrets, core Django, databases and
routing, the request path (middleware), cache, Celery, object storage, deployments, CDN, backups,
webhooks, REST API, API gateway, observability, security, operator console. A section may only use
what an earlier one defined.
"""

import ipaddress
import json
import secrets
import sys
import tempfile
from pathlib import Path

import csp.constants
import environ

# === mode and secrets =============================================================================
BASE_DIR = Path(__file__).resolve().parent.parent


class _Env(environ.Env):
    """django-environ, where a variable that does not parse stops the process with one line naming it
    (not a traceback that says only "could not convert string to float")."""

    KINDS = {int: "a whole number", float: "a number"}

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        try:
            if cast is float and var in self.ENVIRON:
                float(self.ENVIRON[var])  # django-environ would read "12abc" as 12
            return super().get_value(var, cast=cast, default=default, parse_default=parse_default)
        except ValueError:
            if cast not in self.KINDS:
                raise
            # Only numbers get here, never a secret: the value is shown.
            sys.stderr.write(f"error: {var}={self.ENVIRON.get(var, '')!r} is not {self.KINDS[cast]}\n")
            raise SystemExit(2) from None


env = _Env()

VAR_DIR = Path(env("PLATFORM_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# Real mode: any real backing service is configured. Only then are secrets mandatory.
REAL_MODE_VARIABLES = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
REAL_MODE = any(env.str(name, default="") for name in REAL_MODE_VARIABLES)


def _required_secret(name: str, embedded_file: str) -> str:
    value = env.str(name, default="")
    if value:
        return value
    if REAL_MODE:
        # One line naming the variable, no traceback.
        sys.stderr.write(f"error: {name} is required in real mode (DATABASE_URL/REDIS_URL/CELERY_BROKER_URL set)\n")
        raise SystemExit(2)
    # Embedded mode: a per-checkout secret generated once, never committed.
    path = VAR_DIR / embedded_file
    if not path.exists():
        path.write_text(_new_secret(name))
        path.chmod(0o600)
    return path.read_text().strip()


def _new_secret(name: str) -> str:
    if name == "FIELD_ENCRYPTION_KEY":
        from cryptography.fernet import Fernet

        return Fernet.generate_key().decode()
    return secrets.token_urlsafe(50)


SECRET_KEY = _required_secret("DJANGO_SECRET_KEY", ".secret_key")
# Previous keys, still accepted for signatures (sessions, password resets) while a new one takes over.
SECRET_KEY_FALLBACKS = env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[])
# Fernet key(s) for secrets stored encrypted at rest (webhook signing secrets). Comma-separated: the
# first encrypts, all decrypt, so keys can be rotated.
FIELD_ENCRYPTION_KEYS = _required_secret("FIELD_ENCRYPTION_KEY", ".field_encryption_key").split(",")

# === core Django: hosts, apps, templates, auth, static files, logging =============================
DEBUG = env.bool("DJANGO_DEBUG", default=False)
# The platform's own name (admin, API, console). Tenant sites are never served on it: they get their
# verified hostnames and <website id>.SITES_PREVIEW_DOMAIN, a different registrable domain (see
# tenants/origin.py). The embedded default matches ./bin/run; `*.localhost` resolves to loopback in browsers.
PLATFORM_HOST = env.str("PLATFORM_HOST", default="127.0.0.1").strip().lower().rstrip(".")
SITES_PREVIEW_DOMAIN = env.str("SITES_PREVIEW_DOMAIN", default="sites.localhost").strip().lower().strip(".")
# How visitors reach a website, for the `url` the API shows: behind the CDN in real mode (https, default
# port); straight from ./bin/run's server embedded.
SITES_PUBLIC_SCHEME = env.str("SITES_PUBLIC_SCHEME", default="https" if REAL_MODE else "http")
# The port ./bin/run's server listens on (seed_demo prints the demo websites' addresses on it).
RUN_PORT = env.str("PORT", default="8000")
SITES_PUBLIC_PORT = env.str("SITES_PUBLIC_PORT", default="" if REAL_MODE else RUN_PORT)
ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS",
    default=list(dict.fromkeys([PLATFORM_HOST, "127.0.0.1", "localhost", "[::1]", "testserver"])),
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
PLATFORM_ENVIRONMENT = env.str("PLATFORM_ENVIRONMENT", default="live" if REAL_MODE else "test")

INSTALLED_APPS = [
    # The operator console's theme (django-unfold): before django.contrib.admin so its templates win.
    "unfold",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "core",
    "observability",
    "dbrouting",
    "tenants",
    "apikeys",
    "webhooks",
    "cdn",
    "backups",
    # Last but one, so its post_migrate (which syncs the operator roles) runs after every app's permissions exist.
    "console",
    # Content-Security-Policy (django-csp) on every response of the platform host; see CONTENT_SECURITY_POLICY.
    "csp",
]

ROOT_URLCONF = "platform_site.urls"
WSGI_APPLICATION = "platform_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- auth, i18n, static files -------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "core.staticfiles.GzipManifestStaticFilesStorage"},
}

# --- logging ------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# === databases and routing ========================================================================
# --- database ---------------------------------------------------------------------------------
# django-prometheus wraps the engines so query counts and latencies are exported.
_ENGINES = {
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}


def _database(url: str, *, role: str) -> dict:
    config = env.db_url_config(url)
    config["ENGINE"] = _ENGINES.get(config["ENGINE"], config["ENGINE"])
    if "postgresql" in config["ENGINE"]:
        config["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
        config["CONN_HEALTH_CHECKS"] = True
        options = config.setdefault("OPTIONS", {})
        options.setdefault("connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=3))
        # Lets the servers' own statistics tell which node served a query.
        options.setdefault("application_name", f"platform-{role}")
    elif "sqlite" in config["ENGINE"]:
        # Embedded mode serves from threads of one process, and its scheduler writes too: a transaction
        # takes the write lock when it begins (no deadlock upgrading a read lock), and waits for it.
        options = config.setdefault("OPTIONS", {})
        options.setdefault("transaction_mode", "IMMEDIATE")
        options.setdefault("timeout", 20)
    return config


DATABASES = {
    "default": _database(env.str("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"), role="primary")
}
DATABASE_REPLICAS = []
for _index, _url in enumerate(env.list("DATABASE_REPLICA_URLS", default=[]), start=1):
    _alias = f"replica_{_index}"
    DATABASES[_alias] = _database(_url, role=_alias)
    # Tests use the same test database, which reaches the replica by streaming replication.
    DATABASES[_alias]["TEST"] = {"MIRROR": "default"}
    DATABASE_REPLICAS.append(_alias)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- read replicas (dbrouting/router.py) -----------------------------------------------
# The router and its middleware are installed only when replicas exist: no overhead otherwise.
DATABASE_ROUTERS = ["dbrouting.router.PrimaryReplicaRouter"] if DATABASE_REPLICAS else []
# A replica leaves rotation when it is behind the primary by more than either bound.
DATABASE_REPLICA_MAX_LAG_BYTES = env.int("DATABASE_REPLICA_MAX_LAG_BYTES", default=16 * 1024 * 1024)
DATABASE_REPLICA_MAX_LAG_SECONDS = env.float("DATABASE_REPLICA_MAX_LAG_SECONDS", default=30.0)
# How often each process polls replica positions, and how long one poll may take.
DATABASE_REPLICA_POLL_INTERVAL = env.float("DATABASE_REPLICA_POLL_INTERVAL", default=0.5)
DATABASE_REPLICA_POLL_TIMEOUT = env.float("DATABASE_REPLICA_POLL_TIMEOUT", default=2.0)
# How long a client's last write position is remembered (longer than any lag we keep in rotation).
DATABASE_REPLICA_STICKY_SECONDS = env.int("DATABASE_REPLICA_STICKY_SECONDS", default=60)

# === the request path, in one list ================================================================
MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # Wraps everything after it, so session and user lookups also run in the request's routing context.
    *(["dbrouting.middleware.ReadYourWritesMiddleware"] if DATABASE_REPLICAS else []),
    "observability.instrumentation.ApiMetricsMiddleware",
    # An API body over API_MAX_BODY_BYTES gets a 413 before it is read (core/request_limits.py).
    "core.request_limits.RequestBodyLimitMiddleware",
    # Serves tenant websites by Host before host validation (see tenants/origin.py).
    "tenants.origin.WebsiteHostMiddleware",
    # Auth -> rate limit -> tenant context -> view -> usage. Early in the chain (after the website-by-Host
    # middleware, which never serves /api/): the key's Redis call is sent on arrival and read in
    # process_view, so the round trip overlaps the rest of the chain and URL resolution.
    "apikeys.middleware.ApiGatewayMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # No inline script, nothing from elsewhere, on the platform host; tenant responses never get it
    # (they are answered before this middleware runs).
    "core.security.PlatformHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "cdn.policy.ApiNoStoreMiddleware",
    "observability.instrumentation.PrometheusAfterMiddleware",
]

# === cache and Redis: rate limits, key cache, usage counters ======================================
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_prometheus.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
            },
            "KEY_PREFIX": "platform",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "platform"}}
    # django-ratelimit refuses local memory because counts are per process; embedded mode is a single
    # machine for trying the platform, so that is a conscious trade-off there.
    SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]

# === Celery =======================================================================================
# Embedded: no broker. Tasks run eagerly where they are queued, and the web process runs the beat
# schedule itself (platform_site/embedded.py). The in-memory transport is named with a host so kombu
# does not warn that none was given; nothing is ever sent to it.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="memory://localhost/")
CELERY_TASK_ALWAYS_EAGER = not env.str("CELERY_BROKER_URL", default="")
EMBEDDED_SCHEDULER = env.bool("EMBEDDED_SCHEDULER", default=CELERY_TASK_ALWAYS_EAGER)
# How often the gateway's usage counters are rolled up into the database (seconds).
USAGE_ROLLUP_INTERVAL_SECONDS = env.float("USAGE_ROLLUP_INTERVAL_SECONDS", default=60.0)
# How often beat records that it is scheduling (/readyz reports the age of the last record, in seconds).
BEAT_HEARTBEAT_SECONDS = env.float("BEAT_HEARTBEAT_SECONDS", default=60.0)
for _name in ("USAGE_ROLLUP_INTERVAL_SECONDS", "BEAT_HEARTBEAT_SECONDS"):
    if globals()[_name] <= 0:  # a schedule of 0 s would run the task without a pause
        sys.stderr.write(f"error: {_name} must be more than 0 seconds\n")
        raise SystemExit(2)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=None)
CELERY_BROKER_CONNECTION_TIMEOUT = 3

# === object storage ===============================================================================
S3_BUCKET = env.str("S3_BUCKET", default="")
S3_ENDPOINT_URL = env.str("S3_ENDPOINT_URL", default="") or None
AWS_DEFAULT_REGION = env.str("AWS_DEFAULT_REGION", default="us-east-1")
# boto3 reads these itself; pgBackRest gets them in its configuration file (mode 0640), never a command line.
AWS_ACCESS_KEY_ID = env.str("AWS_ACCESS_KEY_ID", default="")
AWS_SECRET_ACCESS_KEY = env.str("AWS_SECRET_ACCESS_KEY", default="")
# Shaped like Django's STORAGES (core/objectstore.py): "default" holds deployed bundles, "tenant_exports"
# the tenant export archives. S3 when S3_BUCKET is set, else local folders under VAR_DIR.
if S3_BUCKET:
    _S3 = {"bucket": S3_BUCKET, "endpoint_url": S3_ENDPOINT_URL, "region": AWS_DEFAULT_REGION}
    OBJECT_STORAGES = {
        "default": {"BACKEND": "core.objectstore.S3ObjectStore", "OPTIONS": _S3},
        # An export upload fails fast when S3 is unreachable; the nightly run is retried by the schedule.
        "tenant_exports": {
            "BACKEND": "core.objectstore.S3ObjectStore",
            "OPTIONS": {**_S3, "connect_timeout": 5, "read_timeout": 60, "max_attempts": 3},
        },
    }
else:
    OBJECT_STORAGES = {
        "default": {"BACKEND": "core.objectstore.LocalObjectStore", "OPTIONS": {"root": str(VAR_DIR / "objects")}},
        "tenant_exports": {
            "BACKEND": "core.objectstore.LocalObjectStore",
            "OPTIONS": {"root": str(VAR_DIR / "backups" / "tenant-exports")},
        },
    }

# === deployments (tenants/deployments.py, tenants/bundles.py) =====================================
DEPLOY_BUNDLE_MAX_BYTES = env.int("DEPLOY_BUNDLE_MAX_BYTES", default=100 * 1024 * 1024)
DEPLOY_BUNDLE_MAX_UNPACKED_BYTES = env.int("DEPLOY_BUNDLE_MAX_UNPACKED_BYTES", default=500 * 1024 * 1024)
# Every entry of an archive counts: files, directories and links.
DEPLOY_BUNDLE_MAX_FILES = env.int("DEPLOY_BUNDLE_MAX_FILES", default=10_000)
# A running deployment's worker renews its lease every third of this; the beat sweep retries a deployment
# whose lease ran out (the worker died or hangs) until it was tried DEPLOY_MAX_ATTEMPTS times, then fails it.
DEPLOY_LEASE_SECONDS = env.float("DEPLOY_LEASE_SECONDS", default=300.0)
DEPLOY_MAX_ATTEMPTS = env.int("DEPLOY_MAX_ATTEMPTS", default=3)
# A pending deployment not started after this long lost its task (broker down at commit): queued again.
DEPLOY_REQUEUE_AFTER_SECONDS = env.float("DEPLOY_REQUEUE_AFTER_SECONDS", default=300.0)

# === CDN (pluggable backends, STORAGES-shaped) ====================================================
CDN_BACKENDS = json.loads(env.str("CDN_BACKENDS", default="{}")) or {
    "default": {"BACKEND": "cdn.backends.dummy.DummyBackend", "OPTIONS": {}}
}
# Invalidation requests for one website within this window are sent as one provider request.
CDN_COALESCE_SECONDS = env.float("CDN_COALESCE_SECONDS", default=2.0)
# A directory with more changed paths than this beneath it is purged as one wildcard (dir/*).
CDN_WILDCARD_THRESHOLD = env.int("CDN_WILDCARD_THRESHOLD", default=100)
# A provider request that fails is retried (delay CDN_RETRY_BACKOFF_SECONDS, doubled each time) until it
# has been tried this many times; then it and the invalidations it carries are failed with the error.
CDN_INVALIDATION_MAX_ATTEMPTS = env.int("CDN_INVALIDATION_MAX_ATTEMPTS", default=5)
CDN_RETRY_BACKOFF_SECONDS = env.float("CDN_RETRY_BACKOFF_SECONDS", default=30.0)
# A worker sending a provider request holds it this long; if it dies, the beat poll retries the request.
CDN_SEND_LEASE_SECONDS = env.float("CDN_SEND_LEASE_SECONDS", default=120.0)

# === backups: engines in the CDN_BACKENDS shape; BACKUP_ENGINE picks the alias ====================
BACKUP_ENGINE = env.str("BACKUP_ENGINE", default="pgbackrest" if env.str("DATABASE_URL", default="") else "sqlite")
BACKUP_LOCAL_DIR = VAR_DIR / "backups"
# pgBackRest's repositories: PGBACKREST_REPO<n>_* (n = 1..4), named like pgBackRest's own options.
# S3 keys come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and are written only to the
# configuration file (mode 0640), never to a command line or a log.
_PGBACKREST_REPOS = []
for _n in range(1, 5):
    _type = env.str(f"PGBACKREST_REPO{_n}_TYPE", default="posix" if _n == 1 else "")
    if not _type:
        continue
    _PGBACKREST_REPOS.append(
        {
            "key": _n,
            "type": _type,
            "path": env.str(
                f"PGBACKREST_REPO{_n}_PATH",
                default=str(VAR_DIR / "pgbackrest" / "repo") if _type == "posix" else "/pgbackrest",
            ),
            "s3_bucket": env.str(f"PGBACKREST_REPO{_n}_S3_BUCKET", default=S3_BUCKET),
            "s3_endpoint": env.str(f"PGBACKREST_REPO{_n}_S3_ENDPOINT", default="s3.amazonaws.com"),
            "s3_region": env.str(f"PGBACKREST_REPO{_n}_S3_REGION", default=AWS_DEFAULT_REGION),
            "s3_uri_style": env.str(f"PGBACKREST_REPO{_n}_S3_URI_STYLE", default="host"),
            "storage_port": env.int(f"PGBACKREST_REPO{_n}_STORAGE_PORT", default=443),
            "storage_verify_tls": env.bool(f"PGBACKREST_REPO{_n}_STORAGE_VERIFY_TLS", default=True),
            "cipher_pass": env.str(f"PGBACKREST_REPO{_n}_CIPHER_PASS", default=""),
            # Retention per repository (e.g. 7 days locally, 90 off-site); BACKUP_RETENTION_DAYS by default.
            "retention_full": env.int(f"PGBACKREST_REPO{_n}_RETENTION_FULL", default=0) or None,
            "retention_full_type": env.str(f"PGBACKREST_REPO{_n}_RETENTION_FULL_TYPE", default="time"),
        }
    )
BACKUP_ENGINES = {
    "pgbackrest": {
        "BACKEND": "backups.engines.pgbackrest.PgBackRestEngine",
        "OPTIONS": {
            "stanza": env.str("PGBACKREST_STANZA", default="platform"),
            "config_path": env.str("PGBACKREST_CONFIG", default=str(VAR_DIR / "pgbackrest" / "pgbackrest.conf")),
            "pg_data": env.str("PG_PRIMARY_DATA", default="/var/lib/postgresql/15/main"),
            "pg_port": env.int("PG_PRIMARY_PORT", default=5432),
            "pg_socket_dir": env.str("PG_SOCKET_DIR", default="/var/run/postgresql"),
            "pg_bindir": env.str("PG_BINDIR", default="/usr/lib/postgresql/15/bin"),
            "os_user": env.str("PGBACKREST_OS_USER", default="postgres"),
            "repos": _PGBACKREST_REPOS,
            "backup_repo": env.int("BACKUP_PGBACKREST_REPO", default=1),
            "retention_full_days": env.int("BACKUP_RETENTION_DAYS", default=30),
            "compress_type": env.str("BACKUP_PGBACKREST_COMPRESS_TYPE", default="lz4"),
            "process_max": env.int("BACKUP_PGBACKREST_PROCESS_MAX", default=2),
            # Bounded waits (deploy/pgbackrest/README.md, "Time-outs"): pgBackRest's io-timeout for every
            # command, a shorter one for archive-push (an unreachable repository must not hold WAL back
            # from the others), and the platform's own limits around whole commands.
            "io_timeout": env.int("BACKUP_PGBACKREST_IO_TIMEOUT", default=20),
            "archive_push_io_timeout": env.int("BACKUP_PGBACKREST_ARCHIVE_PUSH_IO_TIMEOUT", default=3),
            # Unset: WAL is never dropped (pg_wal grows until archived; alerted). Set (e.g. "4GiB"):
            # past that much unarchived WAL, pgBackRest drops segments to save the primary's disk.
            "archive_push_queue_max": env.str("BACKUP_PGBACKREST_ARCHIVE_PUSH_QUEUE_MAX", default=""),
            "archive_timeout": env.int("BACKUP_PGBACKREST_ARCHIVE_TIMEOUT", default=60),
            "db_timeout": env.int("BACKUP_PGBACKREST_DB_TIMEOUT", default=600),
            "backup_timeout": env.int("BACKUP_PGBACKREST_BACKUP_TIMEOUT", default=6 * 3600),
            "probe_timeout": env.float("BACKUP_PGBACKREST_PROBE_TIMEOUT", default=5.0),
        },
    },
    "sqlite": {
        "BACKEND": "backups.engines.sqlite.SQLiteEngine",
        "OPTIONS": {"directory": str(BACKUP_LOCAL_DIR / "sqlite"), "retention_full_days": 30},
    },
}
# Scratch clusters of restore drills; created when missing; must be traversable by the database's OS user.
BACKUP_SCRATCH_DIR = env.str("BACKUP_SCRATCH_DIR", default=tempfile.gettempdir())
# Repositories the scheduled backups go to, each on its own (pgBackRest schedules backups per
# repository); empty: every configured repository.
BACKUP_SCHEDULE_REPOS = env.list("BACKUP_SCHEDULE_REPOS", cast=int, default=[])
# A running backup, drill or export renews its lease every quarter of this; a row whose lease ran out
# (its process is gone) is failed by the reconcile beat task.
BACKUP_LEASE_SECONDS = env.int("BACKUP_LEASE_SECONDS", default=120)
# Models with a path to Tenant that are not tenant data (e.g. audit copies), as "app_label.Model".
BACKUP_TENANT_EXPORT_EXCLUDE = env.list("BACKUP_TENANT_EXPORT_EXCLUDE", default=[])
# WAL archiving alert: fail when the newest archived segment is more than this many segments behind.
BACKUP_WAL_MAX_SEGMENTS_BEHIND = env.int("BACKUP_WAL_MAX_SEGMENTS_BEHIND", default=16)

# === webhooks =====================================================================================
# Delays in seconds before each attempt: Svix's schedule (immediately, 5 s, 5 min, 30 min, 2 h, 5 h,
# 10 h, 10 h). Each delay gets +/- WEBHOOKS_RETRY_JITTER of random jitter.
WEBHOOKS_RETRY_SCHEDULE = [
    float(delay)
    for delay in env.list(
        "WEBHOOKS_RETRY_SCHEDULE", default=["0", "5", "300", "1800", "7200", "18000", "36000", "36000"]
    )
]
WEBHOOKS_RETRY_JITTER = env.float("WEBHOOKS_RETRY_JITTER", default=0.2)
# A Retry-After longer than this is capped, so a receiver cannot park a delivery for ever.
WEBHOOKS_RETRY_AFTER_MAX_SECONDS = env.float("WEBHOOKS_RETRY_AFTER_MAX_SECONDS", default=36000)
# An endpoint whose deliveries have failed (with no success) for this long is disabled.
WEBHOOKS_DISABLE_AFTER_SECONDS = env.float("WEBHOOKS_DISABLE_AFTER_SECONDS", default=5 * 24 * 3600)
WEBHOOKS_CONNECT_TIMEOUT = env.float("WEBHOOKS_CONNECT_TIMEOUT", default=5)
WEBHOOKS_READ_TIMEOUT = env.float("WEBHOOKS_READ_TIMEOUT", default=10)
# Retries due within this many seconds are queued with a countdown; later ones are queued by the sweeper.
WEBHOOKS_COUNTDOWN_MAX_SECONDS = env.float("WEBHOOKS_COUNTDOWN_MAX_SECONDS", default=60)
# How long a queued task may take to start before the sweeper queues it again (broker down, worker killed).
WEBHOOKS_REQUEUE_AFTER_SECONDS = env.float("WEBHOOKS_REQUEUE_AFTER_SECONDS", default=120)
WEBHOOKS_QUEUE = env.str("WEBHOOKS_QUEUE", default="webhooks")
# SSRF guard: http:// only when allowed (development); networks that may be called although private
# (tests, self-hosting), e.g. "127.0.0.0/8,::1/128".
WEBHOOKS_ALLOW_HTTP = env.bool("WEBHOOKS_ALLOW_HTTP", default=False)
WEBHOOKS_ALLOWED_NETWORKS = env.list("WEBHOOKS_ALLOWED_NETWORKS", default=[])
# DNS servers the SSRF guard asks for endpoints' addresses ("address" or "address:port"); the system's
# resolver when empty.
WEBHOOKS_DNS_RESOLVERS = env.list("WEBHOOKS_DNS_RESOLVERS", default=[])
WEBHOOKS_MAX_PAYLOAD_BYTES = env.int("WEBHOOKS_MAX_PAYLOAD_BYTES", default=256 * 1024)
WEBHOOKS_MAX_ENDPOINTS_PER_TENANT = env.int("WEBHOOKS_MAX_ENDPOINTS_PER_TENANT", default=20)
WEBHOOKS_MAX_URL_LENGTH = env.int("WEBHOOKS_MAX_URL_LENGTH", default=2048)
WEBHOOKS_ROTATION_GRACE_SECONDS = env.int("WEBHOOKS_ROTATION_GRACE_SECONDS", default=24 * 3600)
# Deliveries per task, at most WEBHOOKS_SEND_CONCURRENCY requests at a time per worker process, at most
# WEBHOOKS_POOL_MAXSIZE connections to one destination.
WEBHOOKS_BATCH_SIZE = env.int("WEBHOOKS_BATCH_SIZE", default=200)
# Events one fan-out task claims at most, when that many are waiting (their first attempts go out as one
# batch, in one transaction, if they fit in WEBHOOKS_BATCH_SIZE). Larger: fewer tasks and statements per
# delivery under a backlog; smaller: less resent if a worker dies mid-batch.
WEBHOOKS_FAN_OUT_EVENTS = env.int("WEBHOOKS_FAN_OUT_EVENTS", default=10)
WEBHOOKS_SEND_CONCURRENCY = env.int("WEBHOOKS_SEND_CONCURRENCY", default=8)
WEBHOOKS_POOL_MAXSIZE = env.int("WEBHOOKS_POOL_MAXSIZE", default=8)
# Fairness (docs/webhooks.md, "Lanes"): at most this many requests in flight to one endpoint per sending
# loop; a request unanswered after WEBHOOKS_SLOW_AFTER_SECONDS stops counting against the fast lane's
# WEBHOOKS_SEND_CONCURRENCY; after WEBHOOKS_SLOW_LANE_SECONDS its endpoint's next deliveries go to the slow
# lane, as those of an endpoint whose last attempt failed (or took that long). Two thresholds: on a starved
# CPU a healthy request can look slow for a second, and moving its endpoint costs more than freeing a slot.
# A sending loop waits at most WEBHOOKS_LOOP_SECONDS for new work, and writes outcomes at most
# WEBHOOKS_OUTCOME_FLUSH_SECONDS after they arrive.
WEBHOOKS_ENDPOINT_CONCURRENCY = env.int("WEBHOOKS_ENDPOINT_CONCURRENCY", default=4)
WEBHOOKS_SLOW_AFTER_SECONDS = env.float("WEBHOOKS_SLOW_AFTER_SECONDS", default=1)
WEBHOOKS_SLOW_LANE_SECONDS = env.float("WEBHOOKS_SLOW_LANE_SECONDS", default=5)
WEBHOOKS_LOOP_SECONDS = env.float("WEBHOOKS_LOOP_SECONDS", default=120)
WEBHOOKS_OUTCOME_FLUSH_SECONDS = env.float("WEBHOOKS_OUTCOME_FLUSH_SECONDS", default=0.25)
# A delivery being sent holds a lease this long (renewed while its request waits); past it, the attempt is
# recorded as lost and the delivery is sent again.
WEBHOOKS_LEASE_SECONDS = env.float("WEBHOOKS_LEASE_SECONDS", default=60)
# Circuit breaker: after this many failed attempts in a row an endpoint's breaker opens; its deliveries wait
# without a request, and one probe goes out every WEBHOOKS_BREAKER_COOLDOWN_SECONDS until one succeeds.
WEBHOOKS_BREAKER_THRESHOLD = env.int("WEBHOOKS_BREAKER_THRESHOLD", default=10)
WEBHOOKS_BREAKER_COOLDOWN_SECONDS = env.float("WEBHOOKS_BREAKER_COOLDOWN_SECONDS", default=60)
# CA certificates that receivers' TLS certificates must chain to (default: the system's, as Python's ssl).
WEBHOOKS_CA_BUNDLE = env.str("WEBHOOKS_CA_BUNDLE", default="")

# === REST API =====================================================================================
REST_FRAMEWORK = {
    # Tenants' developers use API keys (the gateway has checked them); operators a staff session.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apikeys.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apikeys.permissions.ScopedAccess"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.request_limits.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.DefaultPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "core.ordering.StrictOrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "core.api_schema.DocumentedSchema",
    "EXCEPTION_HANDLER": "core.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Hosting platform API",
    "DESCRIPTION": (
        "Websites, deployments, CDN invalidations, webhooks and API keys of a tenant; operators' endpoints "
        "under the Operators tag.\n\n"
        "**Authentication:** `Authorization: Bearer plk_live_…` (or `X-API-Key`); each operation names the "
        "scope its key needs. **Conventions:** every path ends with `/`; a method a path does not list is "
        "answered 405; a body field an operation does not know is refused (400 naming it), and every invalid "
        "field is reported at once. **Errors** have one shape: "
        '`{"error": {"code": "...", "message": "...", "fields": {"<field>": ["..."]}}}`. '
        "**Limits:** each response carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `RateLimit-Policy`; "
        "a 429 carries `Retry-After`. Tenant developers: start with docs/quickstart.md."
    ),
    "VERSION": "1.0.0",
    "TAGS": [
        {"name": "Websites", "description": "A tenant's websites, their hostnames and public URL."},
        {"name": "Deployments", "description": "Upload a site bundle, list and read deployments, roll back."},
        {"name": "CDN", "description": "Cache invalidations and the website's CDN settings."},
        {"name": "Webhooks", "description": "Endpoints that receive signed events, and the event catalogue."},
        {"name": "Webhook deliveries", "description": "Each event sent to an endpoint, with its attempts."},
        {"name": "API keys", "description": "The tenant's API keys: create, rotate, revoke."},
        {"name": "Usage", "description": "The tenant's API usage, per minute and per key."},
        {"name": "Operators", "description": "Operators only (a staff session): tenants, usage cost, CDN settings."},
    ],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api_schema.closed_request_bodies",
    ],
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # No call to swagger.io's validator: the docs page loads nothing from elsewhere (CSP).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # One name per choice set in the OpenAPI schema (several models have a `status`).
    "ENUM_NAME_OVERRIDES": {
        "TenantStatusEnum": "tenants.models.TenantStatus",
        "WebsiteStatusEnum": "tenants.models.WebsiteStatus",
        "DeploymentStatusEnum": "tenants.models.DeploymentStatus",
        "DeliveryStatusEnum": "webhooks.models.DeliveryStatus",
        "SignatureSchemeEnum": "webhooks.models.SignatureScheme",
        "InvalidationStatusEnum": "cdn.models.InvalidationStatus",
    },
}

# --- request bodies (core/request_limits.py) --------------------------------------------
# An API body larger than this gets a 413 before it is read (the bundle upload has its own limit,
# DEPLOY_BUNDLE_MAX_BYTES); deeper JSON or a NUL character gets a 400.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=10 * 1024 * 1024)
API_MAX_JSON_DEPTH = env.int("API_MAX_JSON_DEPTH", default=32)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES

# === API gateway: API keys, rate limits, usage (its middleware is in MIDDLEWARE) ==================
API_GATEWAY_PATH_PREFIX = "/api/v1/"
# Redis unavailable: "open" serves keys checked against the database without a limit (Kong's
# fault_tolerant); "closed" answers 503. Either way counted in a metric and logged once per interval.
API_GATEWAY_FAIL_MODE = env.str("API_GATEWAY_FAIL_MODE", default="open")
if API_GATEWAY_FAIL_MODE not in ("open", "closed"):
    sys.stderr.write("error: API_GATEWAY_FAIL_MODE must be 'open' or 'closed'\n")
    raise SystemExit(2)
API_GATEWAY_OUTAGE_LOG_INTERVAL = env.int("API_GATEWAY_OUTAGE_LOG_INTERVAL", default=60)
# django-ratelimit on the anonymous surfaces, per client IP.
API_KEY_AUTH_FAILURE_RATE = env.str("API_KEY_AUTH_FAILURE_RATE", default="30/m")
API_KEY_CREATE_RATE = env.str("API_KEY_CREATE_RATE", default="60/h")
# Keys cannot be multiplied: active keys a tenant may hold (a rotated key counts until its grace ends),
# and how long a rotated key may keep working.
API_KEY_MAX_ACTIVE_PER_TENANT = env.int("API_KEY_MAX_ACTIVE_PER_TENANT", default=100)
API_KEY_ROTATION_MAX_GRACE_SECONDS = env.int("API_KEY_ROTATION_MAX_GRACE_SECONDS", default=7 * 86_400)
# The client address behind proxies (core/client_ip.py): the networks of the proxies whose
# X-Forwarded-For is believed (CIDRs, e.g. "10.0.0.0/8,127.0.0.1/32"), or how many proxies there are in
# front of the app (TRUSTED_PROXY_COUNT). Neither set: the connection's address (REMOTE_ADDR).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
for _cidr in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_cidr.strip(), strict=False)
    except ValueError:
        sys.stderr.write(f"error: TRUSTED_PROXIES: {_cidr!r} is not an address or a network (CIDR)\n")
        raise SystemExit(2) from None
if TRUSTED_PROXIES and TRUSTED_PROXY_COUNT:
    sys.stderr.write("error: set TRUSTED_PROXIES or TRUSTED_PROXY_COUNT, not both\n")
    raise SystemExit(2)
RATELIMIT_IP_META_KEY = "core.client_ip.client_ip"
ADMIN_LOGIN_PATH = "/admin/login/"
ADMIN_LOGIN_RATE = env.str("ADMIN_LOGIN_RATE", default="10/m")

# === observability: metrics and usage cost (observability/, tenants/usage.py) =====================
# /metrics needs "Authorization: Bearer $METRICS_TOKEN" when set; in real mode it is required (absent: 404).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Scrape-time sources (database counts, queue depth, WAL archiver, usage) are recomputed at most this often.
METRICS_COLLECTOR_CACHE_SECONDS = env.float("METRICS_COLLECTOR_CACHE_SECONDS", default=5.0)
# A Celery worker host's /metrics listener (observability/celery_metrics.py): off unless a port is set.
# (PROMETHEUS_MULTIPROC_DIR is prometheus_client's own variable, read by the library, not here.)
CELERY_METRICS_PORT = env.int("CELERY_METRICS_PORT", default=0)
CELERY_METRICS_ADDRESS = env.str("CELERY_METRICS_ADDRESS", default="127.0.0.1")
# The per-tenant family (tenant_* series, one per tenant per metric) can be switched off and is capped.
METRICS_TENANT_USAGE_ENABLED = env.bool("METRICS_TENANT_USAGE_ENABLED", default=True)
METRICS_TENANT_SERIES_LIMIT = env.int("METRICS_TENANT_SERIES_LIMIT", default=10_000)
# A tenant's storage: this Deployment field summed over its websites' active deployments.
USAGE_DEPLOYMENT_SIZE_FIELD = env.str("USAGE_DEPLOYMENT_SIZE_FIELD", default="total_bytes")
# Unit prices for cost attribution, in dollars.


def _price(name: str, default: str):
    from decimal import Decimal, InvalidOperation

    raw = env.str(name, default=default)
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0:
        sys.stderr.write(f"error: {name} must be a non-negative decimal number, got {raw!r}\n")
        raise SystemExit(2)
    return value


USAGE_PRICE_STORAGE_GIB_MONTH = _price("USAGE_PRICE_STORAGE_GIB_MONTH", "0.023")
USAGE_PRICE_BANDWIDTH_GIB = _price("USAGE_PRICE_BANDWIDTH_GIB", "0.085")
USAGE_PRICE_REQUESTS_MILLION = _price("USAGE_PRICE_REQUESTS_MILLION", "0.40")
USAGE_PRICE_DEPLOYMENT = _price("USAGE_PRICE_DEPLOYMENT", "0.01")

# === security: HTTPS, cookies, headers, tenant hostnames ==========================================
# --- HTTPS, cookies and security headers ---------------------------------
# Production defaults in real mode; embedded mode (and the local stack, whose `env` opts out) serves
# plain HTTP on 127.0.0.1. TLS usually ends at the CDN or ingress: name the header it sets
# (DJANGO_SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto) so Django knows the request was HTTPS.
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=REAL_MODE)
# Probes and scrapes reach the pods over plain HTTP inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000 if REAL_MODE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=REAL_MODE)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=REAL_MODE)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=REAL_MODE)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=REAL_MODE)
SESSION_COOKIE_HTTPONLY = True
_proxy_ssl_header = env.str("DJANGO_SECURE_PROXY_SSL_HEADER", default="")
if _proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")

# --- trust boundary: tenant sites, platform cookies, CSP, hostname verification -----------------
# Admin and API cookies belong to the platform host alone: no Domain attribute (host-only; the
# tenants.checks system check refuses one), and the __Host- prefix whenever they are Secure, so a
# browser refuses a cookie of that name set by any other host (cookie tossing from a sibling domain).
SESSION_COOKIE_DOMAIN = None
CSRF_COOKIE_DOMAIN = None
SESSION_COOKIE_NAME = "__Host-sessionid" if SESSION_COOKIE_SECURE else "sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken" if CSRF_COOKIE_SECURE else "csrftoken"
# Names tenants may not claim as hostnames, nor anything beneath them (the platform and preview hosts
# always are); add the platform's own domains here.
SITES_RESERVED_DOMAINS = env.list("SITES_RESERVED_DOMAINS", default=[])
# Content-Security-Policy (django-csp, core/security.py) on every response of the platform host: no
# inline script, nothing from elsewhere.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# Unfold's theme colours are CSS variables in one inline <style> of its page skeleton: that element gets
# the response's nonce (templates/unfold/layouts/skeleton.html); scripts stay 'self' only.
CONTENT_SECURITY_POLICY["DIRECTIVES"]["style-src"].append(csp.constants.NONCE)
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Custom hostnames are served once `_platform-challenge.<hostname>` holds the hostname's token in DNS.
# Resolvers: "address" or "address:port" ([v6]:port); none: the system's (/etc/resolv.conf).
HOSTNAME_DNS_RESOLVERS = env.list("HOSTNAME_DNS_RESOLVERS", default=[])
HOSTNAME_DNS_TIMEOUT = env.float("HOSTNAME_DNS_TIMEOUT", default=5.0)
# Pending hostnames: checked after 1 minute, then backing off (doubling) up to once an hour, and given up
# (status failed, re-checkable from the API or the admin) after HOSTNAME_VERIFY_GIVE_UP_HOURS.
HOSTNAME_VERIFY_BACKOFF_SECONDS = env.float("HOSTNAME_VERIFY_BACKOFF_SECONDS", default=60)
HOSTNAME_VERIFY_BACKOFF_MAX_SECONDS = env.float("HOSTNAME_VERIFY_BACKOFF_MAX_SECONDS", default=3600)
HOSTNAME_VERIFY_GIVE_UP_HOURS = env.float("HOSTNAME_VERIFY_GIVE_UP_HOURS", default=7 * 24)
# Verified hostnames are re-checked this often; one whose record has been missing for longer than the
# grace stops being served (a resolver failure never counts as missing).
HOSTNAME_RECHECK_HOURS = env.float("HOSTNAME_RECHECK_HOURS", default=24)
HOSTNAME_VERIFY_GRACE_HOURS = env.float("HOSTNAME_VERIFY_GRACE_HOURS", default=72)

# === operator console (console/) ==================================================================
# The role of a shell user who runs a management command and has no operator account of the same name
# ("platform admins", "support", or "" to refuse operator actions to such users). Commands record the
# OS user and their --reason in the audit log either way.
CLI_OPERATOR_ROLE = env.str("CLI_OPERATOR_ROLE", default="platform admins")
# Dashboard backup state: green while the latest successful backup is younger than AMBER (the 6-hourly
# incremental plus slack), amber until RED (a daily full missed), red after it or when none exists.
CONSOLE_BACKUP_AMBER_AFTER_HOURS = env.float("CONSOLE_BACKUP_AMBER_AFTER_HOURS", default=7)
CONSOLE_BACKUP_RED_AFTER_HOURS = env.float("CONSOLE_BACKUP_RED_AFTER_HOURS", default=26)
# Tenant exports and restore drills run daily and weekly: their own bounds.
CONSOLE_EXPORT_AMBER_AFTER_HOURS = env.float("CONSOLE_EXPORT_AMBER_AFTER_HOURS", default=26)
CONSOLE_EXPORT_RED_AFTER_HOURS = env.float("CONSOLE_EXPORT_RED_AFTER_HOURS", default=50)
CONSOLE_VERIFY_AMBER_AFTER_HOURS = env.float("CONSOLE_VERIFY_AMBER_AFTER_HOURS", default=8 * 24)
CONSOLE_VERIFY_RED_AFTER_HOURS = env.float("CONSOLE_VERIFY_RED_AFTER_HOURS", default=15 * 24)
# The console's look (django-unfold): its name, the sidebar grouped by operator task (built by the
# console app, which knows the admin's URLs and the role map), and the console's own CSS and the script
# that lets unfold's Alpine components run under the CSP (no eval: see console/static/console/unfold-csp.js).
UNFOLD = {
    "SITE_TITLE": "Platform console",
    "SITE_HEADER": "Platform console",
    "SITE_SUBHEADER": "Hosting operations",
    "SITE_SYMBOL": "dns",
    "SITE_URL": "/admin/console/",
    "SHOW_VIEW_ON_SITE": False,
    "SHOW_BACK_BUTTON": True,
    "DASHBOARD_CALLBACK": "console.navigation.index_context",
    "STYLES": ["console.navigation.console_stylesheet"],
    "SCRIPTS": ["console.navigation.csp_script"],
    "SIDEBAR": {"show_search": False, "show_all_applications": True, "navigation": "console.navigation.sidebar"},
}
