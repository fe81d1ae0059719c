"""A real Prometheus scrapes the running platform: gunicorn with two workers and a prefork Celery worker,
both in multiprocess mode, on the test database. A scripted scenario drives the API; the dashboards'
seed panels must then return data from Prometheus, and counters of different processes must add up.
Longer than ~400 lines: the live servers and Prometheus cost ~20 s to start, so every check of them shares
this module's fixtures."""

import http.server
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import yaml
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from platform_site.celery import QUEUES
from tests.conftest import REPO_ROOT
from tests.helpers import die_with_parent, operator_create, wait_for
from tests.observability import promql

TOKEN = "live-metrics-token"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
# Panels and the targets that must return data after the scenario. Left out: backups (no backup runs in
# this scenario) and the task-failure ratio; test_deploy_config still checks their names.
SEED_TARGETS = {
    ("Platform", "Tenants by status"): "A",
    ("Platform", "Tenants by tier"): "A",
    ("Platform", "Websites"): "AB",
    ("Platform", "Deployment throughput"): "A",
    ("Platform", "API latency percentiles"): "ABC",
    ("Platform", "API requests by status class"): "A",
    ("Platform", "Error rates"): "AB",
    ("Platform", "Resource utilisation"): "ABCD",
    ("Platform", "Celery queue depth"): "A",
    ("Platform", "Celery tasks"): "A",
    ("Platform", "Rate-limit decisions"): "A",
    ("Platform", "API key authentication failures"): "A",
    ("Platform", "Replica lag"): "ABCDE",
    ("Platform", "CDN invalidations"): "A",
    ("Platform", "Webhook deliveries"): "AB",
    ("Platform", "WAL archive age"): "AB",
    ("Tenant", "Website traffic"): "A",
    ("Tenant", "Storage usage"): "A",
    ("Tenant", "Bandwidth usage"): "AB",
    ("Tenant", "Deployment history"): "AB",
    ("Tenant", "Cost attribution"): "A",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, headers: dict | None = None, timeout: float = 5) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - http://127.0.0.1 only
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - 127.0.0.1 only
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def _start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def _per_process_counts(directory: Path, sample_name: str, **labels) -> dict[int, float]:
    """sample value by pid, read from each process's own multiprocess file."""
    counts: dict[int, float] = {}
    for path in directory.glob("histogram_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(path)):
            _metric, name, key_labels, _help = json.loads(key)
            if name == sample_name and all(key_labels.get(k) == v for k, v in labels.items()):
                counts[pid] = counts.get(pid, 0) + value
    return counts


def _requests_by_process(directory: Path, labels: dict) -> dict[int, float]:
    # Each process's file keeps a histogram's buckets non-cumulative: their sum is the count.
    return _per_process_counts(directory, "api_request_duration_seconds_bucket", **labels)


class LivePlatform:
    def __init__(self, tmp: Path, env: dict):
        self.tmp = tmp
        self.env = env
        self.web_port = _free_port()
        self.worker_metrics_port = _free_port()
        base = int(os.environ.get("PLATFORM_STACK_PORT_BASE", "15400"))
        self.prometheus_port = base + 90  # reserved for Prometheus by deploy/local/stack
        self.web_dir = tmp / "metrics-web"
        self.worker_dir = tmp / "metrics-worker"
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.prometheus_url = f"http://127.0.0.1:{self.prometheus_port}"
        self.processes: dict[str, subprocess.Popen] = {}

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")[-3000:]

    def start_web(self) -> None:
        env = dict(self.env, PROMETHEUS_MULTIPROC_DIR=str(self.web_dir))
        command = [sys.executable, "-m", "gunicorn", "-c", "platform_site/gunicorn.conf.py"]
        command += ["--bind", f"127.0.0.1:{self.web_port}", "--workers", "2", "--graceful-timeout", "5"]
        self.processes["web"] = _start(command, env, self.tmp / "web.log")
        wait_for(lambda: self._exited("web") or _get(f"{self.web_url}/healthz")[0] == 200, timeout=60, interval=0.2)
        assert not self._exited("web"), self.log("web")

    def start_worker(self) -> None:
        env = dict(
            self.env,
            PROMETHEUS_MULTIPROC_DIR=str(self.worker_dir),
            CELERY_METRICS_PORT=str(self.worker_metrics_port),
        )
        command = [sys.executable, "-m", "celery", "-A", "platform_site", "worker", "-Q", ",".join(QUEUES)]
        command += ["-c", "2", "-n", f"observability-{os.getpid()}@localhost", "--without-gossip", "--without-mingle"]
        self.processes["worker"] = _start(command, env, self.tmp / "worker.log")
        url = f"http://127.0.0.1:{self.worker_metrics_port}/metrics"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        wait_for(lambda: self._exited("worker") or _get(url, auth)[0] == 200, timeout=60, interval=0.2)
        assert not self._exited("worker"), self.log("worker")

    def start_prometheus(self) -> None:
        """deploy/prometheus/prometheus.yml with this run's targets, token file and a 1 s interval."""
        config = yaml.safe_load((promql.PROMETHEUS_DIR / "prometheus.yml").read_text())
        config["global"].update(scrape_interval="1s", evaluation_interval="1s")
        token_file = self.tmp / "metrics-token"
        token_file.write_text(TOKEN)
        targets = {"platform-web": self.web_port, "platform-worker": self.worker_metrics_port}
        for job in config["scrape_configs"]:
            job["authorization"]["credentials_file"] = str(token_file)
            job["static_configs"] = [{"targets": [f"127.0.0.1:{targets[job['job_name']]}"]}]
        for rule_file in config["rule_files"]:
            shutil.copy(promql.PROMETHEUS_DIR / rule_file, self.tmp / rule_file)
        (self.tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", self.prometheus_port)) == 0:
                pytest.fail(f"port {self.prometheus_port} (stack base + 90, Prometheus) is taken")
        command = [
            PROMETHEUS,
            f"--config.file={self.tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.prometheus_port}",
            "--log.level=warn",
        ]
        self.processes["prometheus"] = _start(command, dict(os.environ), self.tmp / "prometheus.log")
        ready = f"{self.prometheus_url}/-/ready"
        wait_for(lambda: self._exited("prometheus") or _get(ready)[0] == 200, timeout=60, interval=0.2)
        assert not self._exited("prometheus"), self.log("prometheus")

    def _exited(self, name: str) -> bool:
        return self.processes[name].poll() is not None

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            _stop(process)

    # --- clients ---
    def scrape_web(self) -> dict[str, list]:
        status, body = _get(f"{self.web_url}/metrics", {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200, body[:300]
        samples: dict[str, list] = {}
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append(sample)
        return samples

    def query(self, expr: str) -> list:
        url = f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        status, body = _get(url)
        assert status == 200, (expr, body[:500])
        payload = json.loads(body)
        assert payload["status"] == "success", payload
        return payload["data"]["result"]

    def query_until(self, expr: str, predicate, timeout: float = 60.0):
        last = []

        def check():
            nonlocal last
            last = self.query(expr)
            return predicate(last)

        try:
            wait_for(check, timeout=timeout, interval=0.5)
        except AssertionError:
            pytest.fail(f"{expr!r} never satisfied the check; last result {last}")
        return last


@pytest.fixture(scope="module")
def live_platform(test_database_env, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("observability")
    broker_url = os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/2"  # a broker of its own: no other worker
    redis.Redis.from_url(broker_url).flushdb()
    env = dict(
        test_database_env,
        METRICS_TOKEN=TOKEN,
        METRICS_COLLECTOR_CACHE_SECONDS="0.5",
        CELERY_BROKER_URL=broker_url,
        # The failing webhook receiver of the scenario listens on 127.0.0.1 over plain HTTP.
        WEBHOOKS_ALLOW_HTTP="true",
        WEBHOOKS_ALLOWED_NETWORKS="127.0.0.0/8",
    )
    platform = LivePlatform(tmp, env)
    # Counters a previous server left behind: starting must discard them, not add them.
    platform.web_dir.mkdir()
    stale = "from prometheus_client import Counter; Counter('deployments', 'x', ['tenant_id', 'status']).labels('stale-tenant', 'succeeded').inc(5)"
    subprocess.run(
        [sys.executable, "-c", stale], env=dict(env, PROMETHEUS_MULTIPROC_DIR=str(platform.web_dir)), check=True
    )
    assert list(platform.web_dir.glob("counter_*.db"))
    try:
        platform.start_web()
        platform.start_worker()
        platform.start_prometheus()
        yield platform
    finally:
        platform.stop()
        redis.Redis.from_url(broker_url).flushdb()


class _FailingReceiver(http.server.BaseHTTPRequestHandler):
    received = 0

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received += 1
        self.send_response(500)
        self.end_headers()

    def log_message(self, format, *args):  # noqa: A002
        pass


@pytest.fixture
def failing_webhook_receiver():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FailingReceiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


class ApiSession:
    """An operator's session against the live server (session cookie + CSRF token, like a browser)."""

    def __init__(self, base_url: str, session_key: str):
        self.base_url = base_url
        self.csrf = secrets.token_hex(16)
        self.headers = {
            "Cookie": f"sessionid={session_key}; csrftoken={self.csrf}",
            "X-CSRFToken": self.csrf,
            "Content-Type": "application/json",
        }

    def upload(self, path: str, bundle: bytes) -> tuple[int, dict]:
        """POST a site bundle as multipart/form-data (field `bundle`), as the API documents."""
        boundary = secrets.token_hex(12)
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="bundle"; filename="site.tar.gz"\r\n'
                f"Content-Type: application/gzip\r\n\r\n"
            ).encode()
            + bundle
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers = dict(self.headers, **{"Content-Type": f"multipart/form-data; boundary={boundary}"})
        request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
            self.base_url + path, data=body, method="POST", headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - 127.0.0.1 only
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
            self.base_url + path, data=data, method=method, headers=self.headers
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - 127.0.0.1 only
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")


def wait_for_replicas() -> None:
    """The servers may read from a streaming replica (this test process's replica aliases mirror the
    primary, but the replica monitor asks the replicas themselves): wait until each has replayed every
    commit so far."""
    from dbrouting.monitor import replicas_wait_for
    from dbrouting.routing import primary_lsn

    replicas_wait_for(primary_lsn(), timeout=30)


@pytest.fixture
def operator_api(live_platform):
    from django.test import Client

    from console.roles import PLATFORM_ADMINS

    user = operator_create("live-operator", "x-pass-12345", PLATFORM_ADMINS)
    client = Client()
    client.force_login(user)
    session_key = client.cookies["sessionid"].value
    # The servers may read the session from a streaming replica: ready once every replica has replayed
    # it. Every call after that is made once, so a refused session fails the test.
    wait_for_replicas()
    session = ApiSession(live_platform.web_url, session_key)
    assert session.call("GET", "/api/v1/websites/")[0] == 200  # not a route the tests count
    return session


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_web_workers_add_up_in_one_scrape_and_dead_workers_are_marked(live_platform, operator_api):
    platform = live_platform
    assert not (set(platform.scrape_web()) & {"process_cpu_seconds_total"})  # multiprocess mode
    stale = [s for s in platform.scrape_web().get("deployments_total", []) if s.labels["tenant_id"] == "stale-tenant"]
    assert stale == [], "the multiprocess directory was not emptied on start"

    def list_tenants(_):
        return operator_api.call("GET", "/api/v1/tenants/")[0]

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(list_tenants, range(40))) == {200}
    counted = {"method": "GET", "route": "tenant-list", "status_class": "2xx"}
    per_process = _requests_by_process(platform.web_dir, counted)
    assert sum(per_process.values()) == 40

    def live_workers():
        return [s.value for s in platform.scrape_web()["web_workers"]]

    wait_for(lambda: live_workers() == [2.0], timeout=30)  # each worker's 1, summed in one scrape

    # Kill a worker that served requests: its counts must stay, its live gauge must go.
    workers = _children(platform.processes["web"].pid)
    assert len(workers) == 2
    victim = next(pid for pid, count in per_process.items() if count and pid in workers)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(_children(platform.processes["web"].pid) - {victim}) == 2, timeout=30)
    wait_for(lambda: not list(platform.web_dir.glob(f"gauge_livesum_{victim}.db")), timeout=30)
    # The replacement has booted and the dead one no longer counts (unmarked, it would read 3).
    wait_for(lambda: live_workers() == [2.0], timeout=30)

    for _ in range(10):
        assert list_tenants(None) == 200
    per_process = _requests_by_process(platform.web_dir, counted)
    assert len([pid for pid, count in per_process.items() if count]) >= 2  # the dead one and a live one
    samples = platform.scrape_web()
    scraped = [
        s.value
        for s in samples["api_request_duration_seconds_count"]
        if all(s.labels.get(k) == v for k, v in counted.items())
    ]
    assert scraped == [50.0]  # one scrape, every process's counts, the dead worker's included
    assert [s.value for s in samples["web_workers"]] == [2.0]


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_prometheus_scrapes_the_scenario_into_the_dashboards(live_platform, operator_api, failing_webhook_receiver):
    from tenants.models import Deployment, Tenant
    from tests.sitebundles import bundle_build, site_v1, site_v2

    platform = live_platform
    api = operator_api
    # --- scenario: tenants, websites, deployments, API traffic with client errors -----------------
    tenant_ids = []
    for slug, tier in (("live-a", "starter"), ("live-b", "professional"), ("live-c", "free")):
        status, body = api.call("POST", "/api/v1/tenants/", {"name": slug, "slug": slug, "tier": tier})
        assert status == 201, body
        tenant_ids.append(body["id"])
    assert api.call("POST", "/api/v1/tenants/", {"name": "", "slug": "bad slug!"})[0] == 400
    assert api.call("GET", "/api/v1/tenants/00000000-0000-0000-0000-000000000000/")[0] == 404
    assert api.call("POST", f"/api/v1/tenants/{tenant_ids[2]}/suspend/", {"reason": "unpaid"})[0] == 200
    website_ids = []
    for tenant_id in tenant_ids[:2]:
        status, body = api.call("POST", "/api/v1/websites/", {"tenant": tenant_id, "name": "www"})
        assert status == 201, body
        website_ids.append(body["id"])

    # Tenant A's webhook endpoint answers 500: every deployment event's delivery fails (and is retried).
    from django.test import override_settings

    from webhooks.services import endpoint_create

    with override_settings(WEBHOOKS_ALLOW_HTTP=True, WEBHOOKS_ALLOWED_NETWORKS=["127.0.0.0/8"]):
        endpoint_create(
            tenant=Tenant.objects.get(pk=tenant_ids[0]),
            url=failing_webhook_receiver,
            event_types=["deployment.succeeded"],
        )

    def deploy(website_id, files):
        status, body = api.upload(f"/api/v1/websites/{website_id}/deployments/", bundle_build(files))
        assert status == 201, body
        wait_for(lambda: Deployment.objects.get(pk=body["id"]).status == "succeeded", timeout=60, interval=0.2)

    deploy(website_ids[0], site_v1())
    deploy(website_ids[0], site_v2())  # changed files: the activation invalidates them on the CDN
    deploy(website_ids[1], site_v1())
    assert api.call("GET", "/readyz")[0] == 200  # cache and broker checks
    # A tenant's API key limited to 3 requests a minute: the 4th and later get 429; a bad key gets 401.
    from apikeys.services import apikey_create

    key, raw_key = apikey_create(
        tenant=Tenant.objects.get(pk=tenant_ids[0]), name="ci", scopes=["websites:read"], rate_limit_per_minute=3
    )
    wait_for_replicas()  # the gateway may look the key up on a replica
    statuses = [
        _get(f"{platform.web_url}/api/v1/websites/", {"Authorization": f"Bearer {raw_key}"})[0] for _ in range(6)
    ]
    assert statuses == [200, 200, 200, 429, 429, 429]
    assert _get(f"{platform.web_url}/api/v1/websites/", {"Authorization": "Bearer not-a-key"})[0] == 401
    # Website traffic through the origin (as the CDN would fetch it): tenant A's bandwidth and requests.
    from tenants.hostnames import preview_host

    served = 0
    for path in ("", "about/", "style.css", "index.html", "no-such-page"):
        status, body = _get(f"{platform.web_url}/{path}", {"Host": preview_host(website_ids[0])})
        assert status in (200, 404), (path, status)
        served += len(body)

    # --- Prometheus sees both jobs ------------------------------------------------------------------
    up = platform.query_until("up", lambda r: len(r) == 2 and all(s["value"][1] == "1" for s in r))
    assert {s["metric"]["job"] for s in up} == {"platform-web", "platform-worker"}

    # Deployments ran in the Celery worker's pool processes; their counts reach Prometheus summed.
    tenant_a = tenant_ids[0]
    result = platform.query_until(
        f'sum(deployments_total{{tenant_id="{tenant_a}",status="succeeded"}})',
        lambda r: r and r[0]["value"][1] == "2",
    )
    assert result[0]["value"][1] == "2"
    platform.query_until('sum(deployments_total{job="platform-worker"})', lambda r: r and r[0]["value"][1] == "3")
    platform.query_until('sum(celery_worker_processes{job="platform-worker"})', lambda r: r and r[0]["value"][1] == "2")
    platform.query_until(
        'sum(celery_tasks_total{task="tenants.tasks.deployment_run_task",outcome="succeeded"})',
        lambda r: r and r[0]["value"][1] == "3",
    )

    # The gateway's decisions: by tier and outcome, and the refused credentials by reason.
    platform.query_until(
        'sum(rate_limit_decisions_total{tier="starter",outcome="limited"})', lambda r: r and r[0]["value"][1] == "3"
    )
    platform.query_until(
        'sum(rate_limit_decisions_total{tier="starter",outcome="allowed"})', lambda r: r and r[0]["value"][1] == "3"
    )
    platform.query_until(
        'sum(api_key_auth_failures_total{reason="malformed"})', lambda r: r and r[0]["value"][1] == "1"
    )
    platform.query_until(
        'sum(api_request_duration_seconds_count{route="website-list",status_class="4xx"})',
        lambda r: r and r[0]["value"][1] == "4",
    )

    # The failing webhook: attempts by outcome and their latency, from the worker's webhook deliveries.
    platform.query_until(
        'sum(webhook_deliveries_total{outcome=~"retrying|failed"})', lambda r: r and float(r[0]["value"][1]) >= 2
    )
    assert _FailingReceiver.received >= 2
    platform.query_until("sum(webhook_delivery_duration_seconds_count)", lambda r: r and float(r[0]["value"][1]) >= 2)

    # django-prometheus' database metrics come from the worker's pool processes too.
    platform.query_until(
        'sum(django_db_execute_total{job="platform-worker"})', lambda r: r and float(r[0]["value"][1]) > 0
    )

    # Tenants active and suspended, as the platform dashboard's panel computes them.
    active = Tenant.objects.filter(status="active").count()
    by_status = platform.query_until(
        "sum by (status) (max by (tier, status) (tenants_total))",
        lambda r: {s["metric"]["status"]: s["value"][1] for s in r} == {"active": str(active), "suspended": "1"},
    )
    assert len(by_status) == 2
    platform.query_until("max(active_websites_total)", lambda r: r and r[0]["value"][1] == "2")
    platform.query_until(
        f'max(tenant_bandwidth_bytes_total{{tenant_id="{tenant_a}"}})', lambda r: r and r[0]["value"][1] == str(served)
    )
    platform.query_until(
        f'max(tenant_requests_total{{tenant_id="{tenant_a}"}})', lambda r: r and r[0]["value"][1] == "5"
    )
    v2_bytes = sum(len(c.encode() if isinstance(c, str) else c) for c in site_v2().values())
    platform.query_until(
        f'max(tenant_storage_bytes{{tenant_id="{tenant_a}"}})', lambda r: r and r[0]["value"][1] == str(v2_bytes)
    )
    platform.query_until(
        'sum(origin_bytes_served_total{job="platform-web"})', lambda r: r and r[0]["value"][1] == str(served)
    )
    # The second deployment's changed files were invalidated by a worker (dummy CDN backend).
    platform.query_until(
        'sum(cdn_invalidations_total{backend="default",status="submitted"})',
        lambda r: r and float(r[0]["value"][1]) >= 1,
    )
    platform.query_until(
        'sum(api_request_duration_seconds_count{route="tenant-list",method="POST",status_class="4xx"})',
        lambda r: r and float(r[0]["value"][1]) >= 1,
    )

    # --- every seed panel's query returns data ------------------------------------------------------
    boards = {board["title"]: board for board in promql.dashboards().values()}
    checked = 0
    for (board_title, panel_title), ref_ids in SEED_TARGETS.items():
        panel = next(p for p in boards[board_title]["panels"] if p["title"] == panel_title)
        for target in panel["targets"]:
            if target["refId"] not in ref_ids:
                continue
            expr = target["expr"].replace("$tenant", tenant_a)
            # Keep API traffic flowing so rate()-based panels have two samples with requests between.
            api.call("GET", "/api/v1/tenants/")
            platform.query_until(expr, lambda r: len(r) > 0, timeout=45)
            checked += 1
    assert checked == sum(len(refs) for refs in SEED_TARGETS.values())

    # Recording rules from deploy/prometheus/rules.yml are evaluated by this Prometheus too.
    platform.query_until("platform:api_requests:rate5m", lambda r: r and float(r[0]["value"][1]) > 0)


def test_worker_metrics_listener_requires_the_token(live_platform):
    url = f"http://127.0.0.1:{live_platform.worker_metrics_port}/metrics"
    assert _get(url)[0] == 401
    assert _get(url, {"Authorization": "Bearer wrong"})[0] == 401
    status, body = _get(url, {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and b"celery_worker_processes" in body
    assert b"tenants_total" not in body  # scrape-time state is the web's alone: sums count it once
    assert _get(f"{live_platform.web_url}/metrics")[0] == 401
