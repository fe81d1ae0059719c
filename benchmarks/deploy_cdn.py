"""Deploy and CDN benchmark, our code and the peer side by side in one run.

1. A 1,000-file bundle deployed through the platform (validate, keep the bundle, unpack, hash,
   store every object with its headers, activate) against a raw boto3 upload of the same files
   with the same concurrency: objects per second each, and their ratio (target >= 0.8).
2. One page requested through Varnish (served from cache) against the same page from the origin
   (gunicorn): requests per second each, and their ratio.

Run against the local stack:  deploy/local/stack up && eval "$(deploy/local/stack env)" &&
python -m benchmarks.deploy_cdn     (last line: one JSON object)
"""

import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

FILES = 1_000
ROUNDS = 5
HTTP_CLIENTS = 8
HTTP_REQUESTS_PER_CLIENT = 400
REPO_ROOT = Path(__file__).resolve().parent.parent


def _setup_django():
    for name in ("DATABASE_URL", "S3_BUCKET", "S3_ENDPOINT_URL", "VARNISH_URL", "PLATFORM_ORIGIN_PORT"):
        if not os.environ.get(name):
            sys.exit(f'benchmark: {name} is not set; run deploy/local/stack up and eval "$(deploy/local/stack env)"')
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _site_files(seed: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    files = {}
    for i in range(FILES):
        kind = i % 4
        size = rng.randint(1_000, 8_000)
        body = rng.randbytes(size)
        name = {0: f"pages/p{i}/index.html", 1: f"assets/app{i}.{i:08x}1.js", 2: f"img/i{i}.png", 3: f"css/s{i}.css"}
        files[name[kind]] = body
    return files


def _ours(website, files) -> float:
    from tenants import services
    from tenants.bundles import bundle_build

    bundle = bundle_build(files)
    started = time.perf_counter()
    deployment = services.deployment_create(website=website, bundle=bundle, run=False)
    deployment = services.deployment_execute(deployment=deployment)
    elapsed = time.perf_counter() - started
    if deployment.status != "succeeded" or deployment.file_count != len(files):
        sys.exit(f"benchmark: deployment failed: {deployment.error}")
    return len(files) / elapsed


def _raw_boto3(files, run_id: str) -> float:
    import boto3
    from botocore.config import Config
    from django.conf import settings

    from cdn.policy import cache_control_for, content_type_for
    from platform_site.objectstore import UPLOAD_CONCURRENCY

    client = boto3.client(
        "s3", endpoint_url=settings.S3_ENDPOINT_URL, region_name=settings.AWS_DEFAULT_REGION,
        config=Config(max_pool_connections=UPLOAD_CONCURRENCY * 2),
    )  # fmt: skip

    def put(item):
        path, body = item
        client.put_object(Bucket=settings.S3_BUCKET, Key=f"bench/raw/{run_id}/{path}", Body=body,
                          ContentType=content_type_for(path), CacheControl=cache_control_for("/" + path))  # fmt: skip

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=UPLOAD_CONCURRENCY) as pool:
        list(pool.map(put, files.items()))
    return len(files) / (time.perf_counter() - started)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _start_origin(port: int) -> subprocess.Popen:
    if _port_open(port):
        sys.exit(f"benchmark: 127.0.0.1:{port} (PLATFORM_ORIGIN_PORT) is already in use")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "platform_site.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2",
         "--threads", "4", "--log-level", "warning"],
        cwd=REPO_ROOT, env=dict(os.environ), start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not _port_open(port):
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            sys.exit("benchmark: the origin (gunicorn) did not start")
        time.sleep(0.1)
    return process


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)


def _rps(host: str, port: int, path: str, site_host: str) -> float:
    errors = []

    def client():
        connection = http.client.HTTPConnection(host, port, timeout=10)
        for _ in range(HTTP_REQUESTS_PER_CLIENT):
            connection.request("GET", path, headers={"Host": site_host})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                errors.append(response.status)
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(HTTP_CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        sys.exit(f"benchmark: {len(errors)} failed requests (e.g. HTTP {errors[0]})")
    return HTTP_CLIENTS * HTTP_REQUESTS_PER_CLIENT / elapsed


def main() -> None:
    _setup_django()
    from urllib.parse import urlsplit

    from platform_site.objectstore import UPLOAD_CONCURRENCY
    from tenants import services
    from tenants.hostnames import preview_host

    run_id = uuid.uuid4().hex[:10]
    tenant = services.tenant_create(name=f"Bench {run_id}", slug=f"bench-{run_id}")
    website = services.website_create(tenant=tenant, name="Bench")
    # The website's preview host: always served, no DNS verification to wait for (a fresh website per run,
    # so Varnish's cache from an earlier run is never hit).
    site_host = preview_host(website.pk)

    ours, theirs = [], []
    for round_number in range(ROUNDS):  # alternate, so drift in moto affects both sides alike
        files = _site_files(seed=round_number)
        theirs.append(_raw_boto3(files, f"{run_id}-{round_number}"))
        ours.append(_ours(website, files))
    objects_per_s, boto3_objects_per_s = statistics.median(ours), statistics.median(theirs)

    origin_port = int(os.environ["PLATFORM_ORIGIN_PORT"])
    varnish = urlsplit(os.environ["VARNISH_URL"])
    origin = _start_origin(origin_port)
    try:
        page = "/pages/p0/"
        _rps("127.0.0.1", origin_port, page, site_host)  # warm both (manifest cache, Varnish object)
        _rps(varnish.hostname, varnish.port, page, site_host)
        origin_rps = _rps("127.0.0.1", origin_port, page, site_host)
        cached_rps = _rps(varnish.hostname, varnish.port, page, site_host)
    finally:
        _stop(origin)

    print(
        json.dumps(
            {
                "objects_per_s": round(objects_per_s, 1),
                "boto3_objects_per_s": round(boto3_objects_per_s, 1),
                "ratio_vs_boto3": round(objects_per_s / boto3_objects_per_s, 3),
                "cached_vs_origin_rps_ratio": round(cached_rps / origin_rps, 2),
                "cached_rps": round(cached_rps, 1),
                "origin_rps": round(origin_rps, 1),
                "files": FILES,
                "rounds": ROUNDS,
                "upload_concurrency": UPLOAD_CONCURRENCY,
                "http_clients": HTTP_CLIENTS,
            }
        )
    )


if __name__ == "__main__":
    main()
