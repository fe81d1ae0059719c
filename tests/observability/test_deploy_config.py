"""deploy/prometheus and deploy/grafana: valid for promtool, unit-tested rules, and only metrics we export."""

import json
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.observability import promql

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def _promtool(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_promtool_check_rules():
    result = _promtool("check", "rules", *map(str, promql.RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 17 rules found" in result.stdout


def test_promtool_check_config(tmp_path):
    """The shipped scrape config, with its token file and rules where it expects them."""
    config = yaml.safe_load((promql.PROMETHEUS_DIR / "prometheus.yml").read_text())
    token_file = tmp_path / "token"
    token_file.write_text("token\n")
    for job in config["scrape_configs"]:
        job["authorization"]["credentials_file"] = str(token_file)
    for rule_file in config["rule_files"]:
        shutil.copy(promql.PROMETHEUS_DIR / rule_file, tmp_path / rule_file)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = _promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert {job["job_name"] for job in config["scrape_configs"]} == {"platform-web", "platform-worker"}


def test_promtool_test_rules():
    tests = sorted((promql.PROMETHEUS_DIR / "tests").glob("*.yml"))
    assert tests
    result = _promtool("test", "rules", *map(str, tests))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout


def test_every_alert_has_a_firing_unit_test():
    alerts = {rule["alert"] for rule in promql.rules() if "alert" in rule}
    fired = set()
    for path in (promql.PROMETHEUS_DIR / "tests").glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    fired.add(check["alertname"])
    assert alerts - fired == set(), "alerts without a test that makes them fire"
    assert fired <= alerts


def test_the_issue_names_each_alert():
    alerts = {rule["alert"] for rule in promql.rules() if "alert" in rule}
    assert {
        "ApiHighErrorRatio",
        "ApiHighLatencyP99",
        "BackupTooOld",
        "WalArchivingFailing",
        "ReplicaLagHigh",
        "WebhookFailureRateHigh",
        "WebhookEndpointBreakersOpen",
        "RateLimitedSpike",
        "CeleryBacklog",
    } <= alerts


def test_every_expression_parses():
    expressions = promql.all_expressions()
    assert len(expressions) > 40
    for where, expr in expressions:
        try:
            promql.metric_names(expr)
        except ValueError as exc:
            pytest.fail(f"{where}: {exc}")


def test_dashboards_and_rules_name_only_exported_metrics():
    exported = promql.platform_exported_names()
    assert promql.unknown_metrics(promql.all_expressions(), exported) == {}


def test_the_check_catches_a_metric_that_no_longer_exists():
    exported = promql.platform_exported_names()
    expressions = [("renamed", 'sum(rate(deployments_count_total{status="failed"}[5m]))'), ("ok", "up")]
    assert promql.unknown_metrics(expressions, exported) == {"renamed": {"deployments_count_total"}}
    with pytest.raises(ValueError):
        promql.metric_names("sum(rate(deployments_total[5m])")


def test_exported_names_include_the_seed_and_django_prometheus():
    exported = promql.platform_exported_names()
    assert {
        "deployments_total",
        "api_request_duration_seconds_bucket",
        "active_websites_total",
        "django_db_execute_total",
        "django_cache_get_total",
        "django_http_requests_latency_seconds_by_view_method_bucket",
    } <= exported
    assert "process_cpu_seconds_total" not in exported  # not exported in multiprocess mode


def test_dashboards_use_the_provisioned_datasource():
    provisioning = yaml.safe_load((REPO_ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = provisioning["datasources"][0]["uid"]
    for path in promql.dashboard_files():
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == uid, (path.name, panel["title"])
            assert all(target["datasource"]["uid"] == uid for target in panel["targets"])
    provider = yaml.safe_load((REPO_ROOT / "deploy/grafana/provisioning/dashboards/platform.yml").read_text())
    assert provider["providers"][0]["type"] == "file"


def test_tenant_dashboard_is_filtered_by_its_tenant_variable():
    dashboard = promql.dashboards()["tenant"]
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["tenant"]
    titles = {panel["title"] for panel in dashboard["panels"]}
    assert {"Website traffic", "Storage usage", "Bandwidth usage", "Deployment history", "Cost attribution"} <= titles
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            assert 'tenant_id="$tenant"' in target["expr"], (panel["title"], target["expr"])


def test_platform_dashboard_has_the_seed_panels():
    titles = {panel["title"] for panel in promql.dashboards()["platform"]["panels"]}
    assert {
        "Tenants by status",
        "Websites",
        "Deployment throughput",
        "API latency percentiles",
        "Error rates",
        "Resource utilisation",
    } <= titles
