"""Load: gunicorn with several workers on 127.0.0.1, on the local stack, driven by a small asyncio client.

    PLATFORM_STACK_PORT_BASE=... deploy/local/stack up && eval "$(deploy/local/stack env)"
    python -m benchmarks.load [--workers 4] [--concurrency 32] [--requests 2000]

Measured side by side on the same server in one run: (authenticated_get) GET /api/v1/websites/ with an
Enterprise key (gateway, rate limiter, replica routing, DRF, pagination) and (baseline_healthz) GET
/healthz, which touches none of it. Then rate-limit exactness under load: a Free key (100 a minute) gets
3x its limit at once from every connection; exactly 100 must pass, every other answer a 429. Any other
status or transport error counts as an error. The last line is one JSON object.
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent


def _django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings")
    import django

    django.setup()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_gunicorn(workers: int, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "platform_site.settings", "LOG_LEVEL": "WARNING"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "platform_site.wsgi:application", "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers), "--backlog", "2048", "--error-logfile", "-"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    raise SystemExit(f"gunicorn not ready in 60 s: {log_path.read_text()[-2000:]}")


async def _drive(url: str, path: str, headers: dict, total: int, concurrency: int) -> dict:
    """`total` requests over `concurrency` keep-alive connections; latency of each, statuses, errors."""
    latencies, statuses, errors = [], {}, []
    remaining = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:

        async def connection():
            for _ in remaining:
                started = time.perf_counter()
                try:
                    response = await client.get(path)
                except httpx.TransportError as error:
                    errors.append(type(error).__name__)
                    continue
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(connection() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": total,
        "seconds": round(elapsed, 3),
        "throughput_rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 2) if ordered else None,
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2) if ordered else None,
        "statuses": {str(code): count for code, count in sorted(statuses.items())},
        "transport_errors": len(errors),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        raise SystemExit('run against the local stack: eval "$(deploy/local/stack env)" first')

    _django()
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    from django.core.management import call_command

    from apikeys import services as apikey_services
    from tenants import services as tenant_services

    call_command("migrate", verbosity=0)
    run = uuid.uuid4().hex[:8]
    enterprise = tenant_services.tenant_create(name=f"load ent {run}", slug=f"load-ent-{run}", tier="enterprise")
    free = tenant_services.tenant_create(name=f"load free {run}", slug=f"load-free-{run}", tier="free")
    for index in range(5):
        tenant_services.website_create(tenant=enterprise, name=f"site {index}", hostnames=[f"s{index}.{run}.test"])
    _, enterprise_key = apikey_services.apikey_create(tenant=enterprise, name="load", scopes=["websites:read"])
    _, free_key = apikey_services.apikey_create(tenant=free, name="load", scopes=["websites:read"])
    free_limit = 100

    log_path = Path(tempfile.mkdtemp(prefix="platform-load-")) / "gunicorn.log"
    process, url = _start_gunicorn(args.workers, log_path)
    try:
        api = "/api/v1/websites/"
        enterprise_headers = {"Authorization": f"Bearer {enterprise_key}"}
        # Warm every worker (connections, the gateway script, key caches); not measured.
        asyncio.run(_drive(url, api, enterprise_headers, args.workers * 20, args.concurrency))
        asyncio.run(_drive(url, "/healthz", {}, args.workers * 20, args.concurrency))

        baseline = asyncio.run(_drive(url, "/healthz", {}, args.requests, args.concurrency))
        authenticated = asyncio.run(_drive(url, api, enterprise_headers, args.requests, args.concurrency))
        burst = asyncio.run(_drive(url, api, {"Authorization": f"Bearer {free_key}"}, free_limit * 3, args.concurrency))
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)

    admitted = burst["statuses"].get("200", 0)
    rejected = burst["statuses"].get("429", 0)
    errors = (
        sum(count for code, count in authenticated["statuses"].items() if code != "200")
        + sum(count for code, count in baseline["statuses"].items() if code != "200")
        + sum(count for code, count in burst["statuses"].items() if code not in ("200", "429"))
        + authenticated["transport_errors"] + baseline["transport_errors"] + burst["transport_errors"]
    )  # fmt: skip
    server_errors = log_path.read_text().count("Traceback")
    summary = {
        "workers": args.workers,
        "concurrency": args.concurrency,
        "requests": args.requests,
        "authenticated_get": authenticated,
        "baseline_healthz": baseline,
        "throughput_ratio_vs_healthz": round(authenticated["throughput_rps"] / baseline["throughput_rps"], 3),
        "rate_limit": {
            "limit_per_minute": free_limit,
            "sent": burst["requests"],
            "admitted": admitted,
            "rejected_429": rejected,
            "exact": admitted == free_limit and rejected == burst["requests"] - free_limit,
        },
        "errors": errors,
        "server_tracebacks": server_errors,
    }
    print(
        f"authenticated GET: {authenticated['throughput_rps']} req/s, p99 {authenticated['p99_ms']} ms; "
        f"/healthz: {baseline['throughput_rps']} req/s, p99 {baseline['p99_ms']} ms; "
        f"rate limit {admitted}/{free_limit} admitted of {burst['requests']}; errors {errors}"
    )
    print(json.dumps(summary))
    if errors or server_errors or not summary["rate_limit"]["exact"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
