"""Liveness (/healthz) and readiness (/readyz) with one entry per dependency."""

import time

from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from .tasks import BEAT_HEARTBEAT_KEY


@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        result = check() or {}
        result = {"ok": True, **result}
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the class name is enough
        result = {
            "ok": False,
            "error": f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}",
            **getattr(exc, "details", {}),
        }
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _check_database(alias: str):
    def check():
        with connections[alias].cursor() as cursor:
            if connections[alias].vendor == "postgresql":
                cursor.execute("SELECT pg_is_in_recovery()")
                return {"in_recovery": cursor.fetchone()[0]}
            cursor.execute("SELECT 1")
        return {}

    return check


def _check_replica(alias: str):
    direct = _check_database(alias)

    def check():
        from dbrouting.monitor import replica_status

        # The poller's view: what the router acts on (replayed LSN, lag, whether reads go there).
        status = replica_status()["replicas"][alias]
        try:
            return {**direct(), **status}
        except Exception as exc:
            exc.details = {key: value for key, value in status.items() if key != "error"}
            raise

    return check


def _check_cache():
    key = "platform:readyz"
    cache.set(key, "1", timeout=10)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return the value written")
    return {"backend": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]}


def _check_broker():
    from kombu import Connection

    # A fresh connection, not the pool's: readiness must reflect the broker now.
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as connection:
        connection.ensure_connection(max_retries=1, timeout=2)
    return {}


def _check_beat():
    last_seen = cache.get(BEAT_HEARTBEAT_KEY)
    return {"last_seen_seconds_ago": None if last_seen is None else round(time.time() - last_seen, 1)}


def dependency_checks() -> dict[str, tuple[bool, callable]]:
    """name -> (required, check). Replicas are optional: reads fall back to the primary."""
    checks = {"database": (True, _check_database("default"))}
    for alias in settings.DATABASE_REPLICAS:
        checks[alias] = (False, _check_replica(alias))
    checks["cache"] = (True, _check_cache)
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        checks["broker"] = (True, _check_broker)
        checks["beat"] = (False, _check_beat)
    elif settings.EMBEDDED_SCHEDULER:
        # Embedded mode: the server's own scheduler thread records the same heartbeat.
        checks["beat"] = (False, _check_beat)
    return checks


@never_cache
def readyz(request):
    results = {}
    ready = True
    for name, (required, check) in dependency_checks().items():
        result = _timed(check)
        result["required"] = required
        results[name] = result
        ready = ready and (result["ok"] or not required)
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": results}, status=200 if ready else 503
    )
