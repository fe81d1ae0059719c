"""Every PromQL expression of deploy/grafana and deploy/prometheus, and the metric names it uses."""

import json
import re
from pathlib import Path

import promql_parser
import yaml

from tests.conftest import REPO_ROOT

PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
DASHBOARDS_DIR = REPO_ROOT / "deploy" / "grafana" / "dashboards"
RULE_FILES = (PROMETHEUS_DIR / "rules.yml", PROMETHEUS_DIR / "alerts.yml")
# Grafana's variables, replaced by values of the right type before parsing.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$tenant": "tenant-id"}
# Series Prometheus itself adds to every scrape.
SCRAPE_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})


def rules() -> list[dict]:
    return [
        rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]
    ]


def recorded_names() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


def dashboards() -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(DASHBOARDS_DIR.glob("*.json"))}


def dashboard_expressions(dashboard: dict) -> list[tuple[str, str]]:
    """(where, expr) for every panel target and every query variable (label_values(metric, label))."""
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append((f"{dashboard['title']} / {panel['title']} / {target['refId']}", target["expr"]))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            match = re.fullmatch(r"label_values\((.+),\s*\w+\)", query.strip())
            assert match, f"unsupported variable query {query!r}"
            found.append((f"{dashboard['title']} / variable {variable['name']}", match.group(1)))
    return found


def all_expressions() -> list[tuple[str, str]]:
    found = [(f"{rule.get('alert') or rule.get('record')} (rules)", rule["expr"]) for rule in rules()]
    for dashboard in dashboards().values():
        found.extend(dashboard_expressions(dashboard))
    return found


def grafana_to_promql(expr: str) -> str:
    for variable, replacement in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, replacement)
    return expr


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects; raises ValueError when it does not parse."""
    names: set[str] = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            if not node.name:
                raise ValueError(f"selector without a metric name in {expr!r}")
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(grafana_to_promql(expr)), visit)
    return names


def unknown_metrics(expressions: list[tuple[str, str]], exported: set[str]) -> dict[str, set[str]]:
    problems = {}
    for where, expr in expressions:
        missing = metric_names(expr) - exported
        if missing:
            problems[where] = missing
    return problems


def platform_exported_names() -> set[str]:
    """Sample names the platform exports: prometheus_client metrics of observability.metrics and
    django-prometheus (process/GC collectors excluded: multiprocess mode does not export them), the
    scrape-time collector's, recording rules' and Prometheus' own per-target series."""
    import django_prometheus.cache.metrics  # noqa: F401
    import django_prometheus.db.metrics  # noqa: F401
    import django_prometheus.middleware
    import django_prometheus.migrations  # noqa: F401
    import django_prometheus.models  # noqa: F401
    from prometheus_client import REGISTRY
    from prometheus_client.metrics import MetricWrapperBase

    import observability.metrics  # noqa: F401 - defines the recorded metrics
    from observability.collectors import scrape_time_metric_names

    django_prometheus.middleware.Metrics.get_instance()
    names = {
        name
        for name, collector in REGISTRY._names_to_collectors.items()  # noqa: SLF001 - the registry's own index
        if isinstance(collector, MetricWrapperBase)
    }
    return names | scrape_time_metric_names() | recorded_names() | SCRAPE_SERIES


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS_DIR.glob("*.json"))
