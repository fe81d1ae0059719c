"""Scrape-time sources: state read from its source of truth when /metrics is scraped (web only).

Each app registers its own sources from its AppConfig.ready (`register_source`), so observability never
imports a domain app. A source is a function returning metric families; it runs at most once every
METRICS_COLLECTOR_CACHE_SECONDS (cached=False: every scrape, for in-memory state), and one failing source
drops only its own metrics and sets `metrics_source_up{source=...}` to 0.
"""

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)


class _Cached:
    """Run a collection function at most once every `ttl` seconds in this process."""

    def __init__(self, function: Callable[[], list], ttl: Callable[[], float]):
        self.function = function
        self.ttl = ttl
        self.value: list = []
        self.at = float("-inf")

    def __call__(self) -> list:
        now = time.monotonic()
        if now - self.at >= self.ttl():
            self.value = self.function()
            self.at = now
        return self.value

    def clear(self) -> None:
        self.at = float("-inf")


def _cache_seconds() -> float:
    from django.conf import settings

    return settings.METRICS_COLLECTOR_CACHE_SECONDS


def _guarded(name: str, function: Callable[[], list]) -> Callable[[], list]:
    def collect() -> list:
        try:
            return [(True, function())]
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail because one source is down
            logger.warning("metrics source %s unavailable: %s", name, exc.__class__.__name__)
            return [(False, [])]

    return collect


# Every source collected at scrape time, by name (the `source` label of metrics_source_up), in the order
# the apps registered them.
_SOURCES: dict[str, _Cached] = {}
# Metric family names the sources export (the dashboards/rules test checks PromQL against them).
_METRIC_NAMES: set[str] = {"metrics_source_up"}


def register_source(
    name: str, function: Callable[[], list], *, metric_names: Iterable[str] = (), cached: bool = True
) -> None:
    """Collect `function`'s families on every web scrape under `name`; registering a name again replaces it."""
    _SOURCES[name] = _Cached(_guarded(name, function), _cache_seconds if cached else (lambda: 0.0))
    _METRIC_NAMES.update(metric_names)


def scrape_time_metric_names() -> frozenset[str]:
    return frozenset(_METRIC_NAMES)


class PlatformStateCollector(Collector):
    """Collects every registered source."""

    def clear(self) -> None:
        for cached in _SOURCES.values():
            cached.clear()

    def collect(self):
        up = GaugeMetricFamily("metrics_source_up", "1 when the scrape-time source answered.", labels=["source"])
        for name, cached in list(_SOURCES.items()):
            ok, families = cached()[0]
            up.add_metric([name], 1 if ok else 0)
            yield from families
        yield up


@dataclass(frozen=True)
class Series:
    """One family of a source's table of per-row series: `value` reads the row's sample (None: no sample)."""

    name: str
    documentation: str
    value: Callable[[Any], float | None]
    family: type = GaugeMetricFamily  # CounterMetricFamily for a counter (exposed with _total)


def labelled_families(label: str, series: Iterable[Series], rows: Iterable[tuple[str, Any]]) -> list:
    """One family per series, each with one sample per (label value, row) pair: a source declares its
    series as a table instead of building each family and adding each sample by hand."""
    families = [(one, one.family(one.name, one.documentation, labels=[label])) for one in series]
    for label_value, row in rows:
        for one, family in families:
            value = one.value(row)
            if value is not None:
                family.add_metric([label_value], value)
    return [family for _, family in families]


# --- the platform's own source: the broker's queues ---------------------------------------------


def queue_families() -> list:
    from django.conf import settings

    from platform_site.celery import QUEUES

    if settings.CELERY_TASK_ALWAYS_EAGER or not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return []
    import redis

    family = GaugeMetricFamily(
        "celery_queue_length", "Tasks waiting in the broker, per Celery queue.", labels=["queue"]
    )
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        with client.pipeline(transaction=False) as pipe:
            # Kombu keeps one Redis list per queue and priority step: "name" and "name\x06\x16<priority>".
            keys = {queue: [queue, *(f"{queue}\x06\x16{p}" for p in (3, 6, 9))] for queue in QUEUES}
            for queue_keys in keys.values():
                for key in queue_keys:
                    pipe.llen(key)
            lengths = iter(pipe.execute())
        for queue, queue_keys in keys.items():
            family.add_metric([queue], sum(next(lengths) for _ in queue_keys))
    finally:
        client.close()
    return [family]
