"""Settings for benchmarks only: the platform's, plus the peers measured beside it."""

from platform_site.settings import *  # noqa: F403
from platform_site.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "rest_framework.authtoken", "rest_framework_api_key"]
ROOT_URLCONF = "benchmarks.urls"
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
