"""Webhook fan-out throughput and latency, side by side with a raw keep-alive HTTP client.

    eval "$(deploy/local/stack env)"; python -m benchmarks.webhooks_fanout [--deliveries 5000]

Our side: events recorded through webhooks.services.event_record, fanned out by real Celery workers
(2 processes, each with a pool of 8 threads as deploy/ runs them; --pool prefork or solo to compare)
into deliveries to 20 endpoints on a local receiver, each delivery signed, SSRF-checked, pinned and
logged. The peer: raw keep-alive clients (2 processes, one connection each) posting the same
signed payloads to the same receiver, with libcurl (the library our deliveries use) and with urllib3.
raw_per_s, the limit of this machine, is the faster of the two (libcurl here); the urllib3 figures are
reported too (the peer of earlier runs, when deliveries used urllib3). Rounds alternate all three, so
drift on a shared machine hits each.

deliveries_per_s is the fan-out's own rate: the events of a round are recorded while the worker does
not consume (Celery's cancel_consumer), then the clock runs from add_consumer to the last delivery's
finish time. With only 2 cores here, recording the events at the same time (in production: the web
processes' work, elsewhere) would take CPU from the workers; with_recording_per_s counts that time
too (recording, then fan-out). Then, on an idle worker, the latency from an event's recording to its
first attempt.

Fairness: another tenant's endpoints never answer (a socket that listens and never accepts, so every
request waits for the client's 15 s time-out): first 8 endpoints, then 50 fresh ones, while that tenant
keeps emitting events. other_tenant_p99_ms_with_hanging_endpoints is the p99 of event -> first attempt of
the benchmark tenant's deliveries meanwhile (the worse of the two phases; target < 2000 ms).

--size quick (the default) finishes in a few minutes; --size full is the measurement of record (more
deliveries, rounds and samples). The last line is one JSON object.
"""

import argparse
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
QUEUE = f"webhooks-bench-{os.getpid()}"
WORKER = f"bench-{os.getpid()}"  # the workers' Celery hostnames start with it
ENDPOINTS = 20
BENCH_ENV = {
    "WEBHOOKS_QUEUE": QUEUE,
    "WEBHOOKS_ALLOW_HTTP": "true",
    "WEBHOOKS_ALLOWED_NETWORKS": "127.0.0.0/8",
    "WEBHOOKS_MAX_ENDPOINTS_PER_TENANT": str(max(ENDPOINTS, 50)),
    "LOG_LEVEL": "WARNING",
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else small writes wait ~40 ms for delayed ACKs

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


def _serve(port_queue):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    port_queue.put(server.server_address[1])
    server.serve_forever()


def _raw_post_urllib3(port: int, payloads: list[tuple[str, bytes, dict]], result_queue) -> None:
    import urllib3

    pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=1, retries=False)
    ok = 0
    for path, body, headers in payloads:
        response = pool.urlopen("POST", path, body=body, headers=headers, redirect=False)
        ok += 200 <= response.status < 300
    result_queue.put(ok)


def _raw_post_curl(port: int, payloads: list[tuple[str, bytes, dict]], result_queue) -> None:
    import pycurl

    curl = pycurl.Curl()  # one easy handle: libcurl keeps its connection alive between requests
    curl.setopt(pycurl.WRITEFUNCTION, lambda chunk: None)
    ok = 0
    for path, body, headers in payloads:
        curl.setopt(pycurl.URL, f"http://127.0.0.1:{port}{path}")
        curl.setopt(pycurl.POSTFIELDS, body)
        curl.setopt(pycurl.HTTPHEADER, [f"{name}: {value}" for name, value in headers.items()] + ["Expect:"])
        curl.perform()
        ok += 200 <= curl.getinfo(pycurl.RESPONSE_CODE) < 300
    result_queue.put(ok)


def _signed_payloads(secret: str, count: int) -> list[tuple[str, bytes, dict]]:
    from webhooks import signing

    payloads = []
    for index in range(count):
        body = json.dumps({"id": str(index), "type": "tenant.suspended", "version": 1, "data": {"n": index}}).encode()
        headers = signing.headers(secrets_=[secret], msg_id=f"msg_{index}", timestamp=int(time.time()), body=body)
        headers["Content-Type"] = "application/json"
        payloads.append((f"/hook/{index % ENDPOINTS}", body, headers))
    return payloads


def raw_rate(port: int, secret: str, count: int, processes: int = 2, client=_raw_post_urllib3) -> float:
    payloads = _signed_payloads(secret, count)
    results = multiprocessing.Queue()
    chunks = [payloads[i::processes] for i in range(processes)]
    workers = [multiprocessing.Process(target=client, args=(port, chunk, results)) for chunk in chunks]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    delivered = sum(results.get() for _ in workers)
    elapsed = time.perf_counter() - started
    for worker in workers:
        worker.join()
    assert delivered == count, f"raw client delivered {delivered}/{count}"
    return count / elapsed


def start_workers(env: dict, pool: str, threads: int) -> tuple[list[subprocess.Popen], list[str]]:
    """2 worker processes: two with a pool of threads each (as deploy/ runs the webhooks workers), two
    solo workers, or one prefork worker with 2 child processes (and the parent that feeds them)."""
    from platform_site.celery import app

    if pool == "prefork":
        layout = [("prefork", "2", f"{WORKER}@localhost")]
    else:
        concurrency = str(threads) if pool == "threads" else "1"
        layout = [(pool, concurrency, f"{WORKER}-{index}@localhost") for index in range(2)]
    processes, names = [], []
    for kind, concurrency, name in layout:
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "platform_site", "worker", "-Q", QUEUE, "-P", kind, "-c", concurrency,
             "-n", name, "--without-gossip", "--without-mingle", "-l", os.environ.get("BENCH_LOG", "WARNING")],
            cwd=REPO_ROOT, env=env, start_new_session=True,
        ))  # fmt: skip
        names.append(name)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            break
        if len(app.control.ping(destination=names, timeout=0.5)) == len(names):
            return processes, names
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    raise SystemExit("benchmark: the Celery workers did not start in 60 s")


SIZES = {
    "quick": {"deliveries": 2000, "rounds": 2, "latency_samples": 30, "hanging_seconds": 20},
    "full": {"deliveries": 5000, "rounds": 3, "latency_samples": 50, "hanging_seconds": 30},
}
HANGING_ENDPOINTS = (8, 50)


def _never_answering_socket() -> socket.socket:
    """A listening socket that never accepts: connections complete in the kernel's backlog, requests are
    never read, and every attempt waits for the client's time-out."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    return sock


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=list(SIZES), default="quick")
    parser.add_argument("--deliveries", type=int)
    parser.add_argument("--latency-samples", type=int)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--hanging-seconds", type=float, help="length of each phase with hanging endpoints")
    parser.add_argument("--pool", choices=["threads", "prefork", "solo"], default="threads")
    # The deployment's default (WEBHOOKS_WORKER_CONCURRENCY in deploy/compose, --concurrency in deploy/k8s).
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    for name, value in SIZES[args.size].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if not os.environ.get("DATABASE_URL") or not os.environ.get("CELERY_BROKER_URL"):
        raise SystemExit('benchmark: run against the stack: eval "$(deploy/local/stack env)" first')
    os.environ.update(BENCH_ENV)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction
    from django.db.models import Max, Q
    from django.utils import timezone

    from tenants import services as tenant_services
    from tenants.models import Tenant
    from webhooks import services
    from webhooks.models import Attempt, Delivery

    call_command("migrate", verbosity=0)
    port_queue = multiprocessing.Queue()
    receiver = multiprocessing.Process(target=_serve, args=(port_queue,), daemon=True)
    receiver.start()
    port = port_queue.get(timeout=10)

    slug = f"bench-{os.getpid()}"
    tenant = tenant_services.tenant_create(name="Benchmark", slug=slug)
    secret = None
    for index in range(ENDPOINTS):
        _, secret = services.endpoint_create(
            tenant=tenant, url=f"http://127.0.0.1:{port}/hook/{index}", event_types=["tenant.*"]
        )
    events = args.deliveries // ENDPOINTS
    endpoint_ids = list(tenant.webhook_endpoints.values_list("pk", flat=True))
    workers, names = start_workers(dict(os.environ), args.pool, args.threads)
    from platform_site.celery import app

    def fan_out_round() -> tuple[float, float, float]:
        """(backlog rate, end-to-end rate, recording seconds) of one round of `events` events."""
        # The backlog: events recorded (and their tasks queued) while the worker does not consume.
        app.control.cancel_consumer(QUEUE, destination=names, reply=True)
        recording_started = time.perf_counter()
        recorded_at = timezone.now()
        for index in range(events):
            with transaction.atomic():
                services.event_record(tenant=tenant, type="tenant.suspended", data={"tenant": {"n": index}})
        recorded_s = time.perf_counter() - recording_started
        started_at = timezone.now()
        app.control.add_consumer(QUEUE, destination=names, reply=True)
        # Polled by endpoint (the delivery index leads with it), a few times a second: the poll competes
        # with the workers for CPU, and the clock does not depend on it (see below).
        mine = Delivery.objects.filter(endpoint_id__in=endpoint_ids, created_at__gte=recorded_at)
        deadline = time.monotonic() + 600
        while mine.filter(status="succeeded").count() < total:
            if time.monotonic() > deadline:
                raise SystemExit("benchmark: deliveries did not finish in 600 s")
            time.sleep(0.25)
        # The end is the last delivery's own finish time (not when this loop happened to look).
        finished_at = mine.aggregate(last=Max("finished_at"))["last"]
        fan_out_s = (finished_at - started_at).total_seconds()
        return total / fan_out_s, total / (fan_out_s + recorded_s), recorded_s

    total = events * ENDPOINTS
    try:
        raw_rates, urllib3_rates, backlog_rates, end_to_end_rates, recorded = [], [], [], [], []
        for _ in range(args.rounds):  # alternated, so drift on a shared machine hits each
            raw_rates.append(raw_rate(port, secret, total, client=_raw_post_curl))
            urllib3_rates.append(raw_rate(port, secret, total))
            backlog, end_to_end, recorded_s = fan_out_round()
            backlog_rates.append(backlog)
            end_to_end_rates.append(end_to_end)
            recorded.append(recorded_s)
        failed = Delivery.objects.filter(endpoint__tenant=tenant).exclude(status="succeeded").count()

        # Latency on an idle worker: one event at a time to one endpoint.
        endpoint = tenant.webhook_endpoints.first()
        latencies = []
        for _ in range(args.latency_samples):
            event = services.endpoint_ping(endpoint=endpoint)
            attempt = None
            while attempt is None:
                # Finished: a started attempt holds its claim time until its outcome writes the request's.
                attempt = Attempt.objects.filter(delivery__event=event, state="finished").first()
                time.sleep(0.002)
            latencies.append((attempt.started_at - event.created_at).total_seconds() * 1000)

        # Fairness: a tenant whose endpoints never answer keeps emitting events; the benchmark tenant's too.
        hanging_socket = _never_answering_socket()
        hanging_url = f"http://127.0.0.1:{hanging_socket.getsockname()[1]}"
        fairness = {}
        for count in HANGING_ENDPOINTS:
            hanging_tenant = tenant_services.tenant_create(name=f"Hanging {count}", slug=f"{slug}-hang-{count}")
            for index in range(count):
                services.endpoint_create(tenant=hanging_tenant, url=f"{hanging_url}/{index}", event_types=["tenant.*"])
            phase_started, events_healthy = time.monotonic(), []
            while time.monotonic() - phase_started < args.hanging_seconds:
                with transaction.atomic():
                    services.event_record(tenant=hanging_tenant, type="tenant.suspended", data={"tenant": {"n": 0}})
                with transaction.atomic():
                    events_healthy.append(
                        services.event_record(tenant=tenant, type="tenant.suspended", data={"tenant": {"n": 1}})
                    )
                time.sleep(0.25)
            wanted = len(events_healthy) * ENDPOINTS
            first = Attempt.objects.filter(delivery__event__in=events_healthy, number=1).exclude(state="started")
            deadline = time.monotonic() + 120
            while first.count() < wanted and time.monotonic() < deadline:
                time.sleep(0.5)
            waits = [(started - created).total_seconds() * 1000
                     for started, created in first.values_list("started_at", "delivery__event__created_at")]  # fmt: skip
            # The first phase's endpoints keep hanging (and retrying) through the second, as they would.
            fairness[count] = {"p99": _p99(waits), "missing": wanted - len(waits)}
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:  # a loop still waiting on hanging receivers
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=30)
        receiver.terminate()
        Tenant.objects.filter(Q(slug=slug) | Q(slug__startswith=f"{slug}-hang-")).delete()

    raw_per_s = max(statistics.mean(raw_rates), statistics.mean(urllib3_rates))
    urllib3_per_s = statistics.mean(urllib3_rates)
    deliveries_per_s = statistics.mean(backlog_rates)
    result = {
        "deliveries": total,
        "rounds": args.rounds,
        "failed": failed,
        "deliveries_per_s": round(deliveries_per_s, 1),
        "raw_per_s": round(raw_per_s, 1),
        "ratio_vs_raw": round(deliveries_per_s / raw_per_s, 3),
        "p50_event_to_attempt_ms": round(statistics.median(latencies), 1),
        "with_recording_per_s": round(statistics.mean(end_to_end_rates), 1),
        "with_recording_ratio_vs_raw": round(statistics.mean(end_to_end_rates) / raw_per_s, 3),
        "events_recorded_s": round(statistics.mean(recorded), 2),
        "rounds_deliveries_per_s": [round(rate, 1) for rate in backlog_rates],
        "raw_curl_per_s": round(statistics.mean(raw_rates), 1),
        "rounds_raw_curl_per_s": [round(rate, 1) for rate in raw_rates],
        "raw_urllib3_per_s": round(urllib3_per_s, 1),
        "ratio_vs_raw_urllib3": round(deliveries_per_s / urllib3_per_s, 3),
        "rounds_raw_urllib3_per_s": [round(rate, 1) for rate in urllib3_rates],
        "worker_processes": 2,
        "worker_pool": args.pool,
        "worker_threads": args.threads if args.pool == "threads" else None,
        "endpoints": ENDPOINTS,
        "other_tenant_p99_ms_with_hanging_endpoints": round(max(phase["p99"] for phase in fairness.values()), 1),
        "hanging_endpoints": list(HANGING_ENDPOINTS),
        "other_tenant_p99_ms_by_hanging_endpoints": {str(n): round(phase["p99"], 1) for n, phase in fairness.items()},
        "other_tenant_first_attempts_missing": sum(phase["missing"] for phase in fairness.values()),
        "size": args.size,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
