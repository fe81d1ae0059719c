"""Where prometheus_client's multiprocess mode keeps its files, if it is on.

The one environment read outside the settings, on purpose: prometheus_client itself reads
PROMETHEUS_MULTIPROC_DIR from the process environment (when values are written, in every worker), and
gunicorn.conf.py sets it before Django starts. A setting would be a copy that could disagree with what
the library uses. No Django import here: the Celery app imports this before Django is set up.
"""

import os


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
