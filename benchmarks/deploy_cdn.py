"""Deploy and CDN benchmark, our code and the peer side by side in one run.

1. A 1,000-file bundle deployed through the platform (validate, keep the bundle, unpack, hash,
   store every object with its headers, activate) against a raw boto3 upload of the same files
   with the same concurrency: objects per second each, and their ratio (target >= 0.8).
2. One page requested through Varnish (served from cache) against the same page from the origin
   (gunicorn): requests per second each, and their ratio.
3. `compressed_bytes_ratio`: every file of a mkdocs-like site fetched through Varnish by a client that
   accepts br and gzip, bytes on the wire over the files' own bytes (lower is better).
4. `validate_peak_rss_mib`: peak RSS growth (VmHWM after, reset first, over VmRSS before) of the web
   process receiving a bundle of DEPLOY_BUNDLE_MAX_BYTES (streamed to object storage) and of a worker
   validating and publishing a bundle at the unpacked-size and entry limits (a 300 MiB member, directories
   up to the entry limit); the larger of the two (target <= 64).

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
    from core.objectstore import UPLOAD_CONCURRENCY

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


def _rss_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for {pid}")


def _reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _hostile_bundle(path: Path, *, member_bytes: int, directories: int) -> None:
    """A tar.gz within the limits that is as heavy as they allow: one huge member of zeros (it compresses
    to almost nothing) and directory entries up to the entry limit."""
    import io
    import tarfile

    class Zeros(io.RawIOBase):
        def __init__(self, size):
            self.left = size

        def readable(self):
            return True

        def readinto(self, buffer):
            count = min(len(buffer), self.left)
            buffer[:count] = bytes(count)
            self.left -= count
            return count

    with tarfile.open(path, mode="w:gz", compresslevel=1) as archive:
        for i in range(directories):
            info = tarfile.TarInfo(f"d{i}/")
            info.type = tarfile.DIRTYPE
            archive.addfile(info)
        info = tarfile.TarInfo("big.bin")
        info.size = member_bytes
        archive.addfile(info, io.BufferedReader(Zeros(member_bytes), buffer_size=1024 * 1024))
        page = tarfile.TarInfo("index.html")
        page.size = 2
        archive.addfile(page, io.BytesIO(b"hi"))


def _measure_worker(deployment_id: str) -> None:
    """In a fresh process (a worker's view): validate and publish one deployment, print the RSS growth."""
    _setup_django()
    from tenants import services
    from tenants.models import Deployment

    os.getpid()
    before = _rss_mib(os.getpid(), "VmRSS")
    _reset_peak(os.getpid())
    deployment = services.deployment_execute(deployment=Deployment(pk=deployment_id))
    if deployment.status != "succeeded":
        sys.exit(f"benchmark: the hostile-but-valid deployment failed: {deployment.error}")
    print(json.dumps({"rss_growth_mib": _rss_mib(os.getpid(), "VmHWM") - before}))


def _worker_peak_mib(website) -> float:
    import tempfile

    from django.conf import settings

    from tenants import services

    with tempfile.TemporaryDirectory() as folder:
        bundle = Path(folder) / "hostile.tar.gz"
        _hostile_bundle(bundle, member_bytes=300 * 1024 * 1024, directories=settings.DEPLOY_BUNDLE_MAX_FILES - 3)
        with bundle.open("rb") as fileobj:
            deployment = services.deployment_create(website=website, bundle=fileobj, run=False)
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.deploy_cdn", "--measure-worker", str(deployment.pk)],
        cwd=REPO_ROOT, env=dict(os.environ), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if output.returncode != 0:
        sys.exit(f"benchmark: measuring the worker failed: {output.stderr[-2000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])["rss_growth_mib"]


def _web_peak_mib(origin: subprocess.Popen, port: int, website, site_host: str) -> float:
    """Upload a bundle of the maximum size to the gunicorn origin; the peak RSS growth of its workers."""
    import tempfile

    from django.conf import settings

    from apikeys import services as apikey_services

    _, raw_key = apikey_services.apikey_create(tenant=website.tenant, name="bench", scopes=["deployments:write"])
    workers = _children(origin.pid)
    before = {pid: _rss_mib(pid, "VmRSS") for pid in workers}
    for pid in workers:
        _reset_peak(pid)
    boundary = uuid.uuid4().hex
    with tempfile.TemporaryFile() as body:
        body.write(f'--{boundary}\r\nContent-Disposition: form-data; name="bundle"; filename="site.tar.gz"\r\n'
                   "Content-Type: application/gzip\r\n\r\n".encode())  # fmt: skip
        body.write(b"\x1f\x8b")  # gzip magic: the request only checks that much; the rest is incompressible
        remaining = settings.DEPLOY_BUNDLE_MAX_BYTES - 2
        while remaining:
            chunk = os.urandom(min(remaining, 1024 * 1024))
            body.write(chunk)
            remaining -= len(chunk)
        body.write(f"\r\n--{boundary}--\r\n".encode())
        length = body.tell()
        body.seek(0)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        connection.request("POST", f"/api/v1/websites/{website.pk}/deployments/", body=body, headers={
            "Host": "localhost", "Authorization": f"Bearer {raw_key}", "Content-Length": str(length),
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        })  # fmt: skip
        response = connection.getresponse()
        answer = response.read()
        connection.close()
    if response.status != 201:
        sys.exit(f"benchmark: the upload was refused: {response.status} {answer[:300]!r}")
    return max(_rss_mib(pid, "VmHWM") - before[pid] for pid in workers)


def _compressed_bytes_ratio(varnish, origin_port: int, website, site_host: str) -> float:
    from tenants import services
    from tests.sitebundles import bundle_build, mkdocs_like_site

    files = mkdocs_like_site()
    deployment = services.deployment_create(website=website, bundle=bundle_build(files), run=False)
    services.deployment_execute(deployment=deployment)
    from cdn.paths import file_url_path

    def get(host: str, port: int, path: str) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection(host, port, timeout=10)
        connection.request("GET", path, headers={"Host": site_host, "Accept-Encoding": "br, gzip"})
        response = connection.getresponse()
        body = response.read()
        connection.close()
        return response.status, body

    # The origin reads from the replica: every file must be served there before the cache asks for it.
    for path in files:
        deadline = time.monotonic() + 30
        while get("127.0.0.1", origin_port, file_url_path(path))[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
    on_the_wire = 0
    for path in files:
        status, body = get(varnish.hostname, varnish.port, file_url_path(path))
        if status != 200:
            sys.exit(f"benchmark: {path} answered {status} through Varnish")
        on_the_wire += len(body)
    return on_the_wire / sum(len(body) for body in files.values())


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--measure-worker":
        _measure_worker(sys.argv[2])
        return
    _setup_django()
    from urllib.parse import urlsplit

    from core.objectstore import UPLOAD_CONCURRENCY
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
        # Its preview host too: a custom hostname would be served only once its DNS record is verified.
        docs = services.website_create(tenant=tenant, name="Docs")
        docs_host = preview_host(docs.pk)
        compressed_ratio = _compressed_bytes_ratio(varnish, origin_port, docs, docs_host)
        web_peak = _web_peak_mib(origin, origin_port, website, site_host)
    finally:
        _stop(origin)
    worker_peak = _worker_peak_mib(website)

    print(
        json.dumps(
            {
                "objects_per_s": round(objects_per_s, 1),
                "boto3_objects_per_s": round(boto3_objects_per_s, 1),
                "ratio_vs_boto3": round(objects_per_s / boto3_objects_per_s, 3),
                "cached_vs_origin_rps_ratio": round(cached_rps / origin_rps, 2),
                "cached_rps": round(cached_rps, 1),
                "compressed_bytes_ratio": round(compressed_ratio, 3),
                "validate_peak_rss_mib": round(max(web_peak, worker_peak), 1),
                "web_upload_peak_rss_mib": round(web_peak, 1),
                "worker_validate_peak_rss_mib": round(worker_peak, 1),
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
