"""Security in real mode, with the documented production environment (deploy/k8s: the ConfigMap and the
secrets' example, secrets filled with fresh values): `check --deploy` clean, HTTPS redirect, HSTS,
nosniff, secure cookies, admin behind login and CSRF, and no secret on any admin page.

The server is gunicorn in that environment, pointed at the local stack's services instead of the
cluster's names (the only variables changed), on 127.0.0.1.
"""

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.helpers import die_with_parent, wait_for

K8S = REPO_ROOT / "deploy" / "k8s"
HOST = "api.platform.example.com"
SERVICE_VARIABLES = (
    "DATABASE_URL", "DATABASE_REPLICA_URLS", "REDIS_URL", "CELERY_BROKER_URL", "S3_BUCKET", "S3_ENDPOINT_URL",
    "AWS_DEFAULT_REGION",
)  # fmt: skip


def production_environment(tmp_path: Path) -> dict:
    """The ConfigMap's variables plus every secret of secrets.env.example, each a fresh random value."""
    from cryptography.fernet import Fernet

    env = {
        key: str(value) for key, value in yaml.safe_load((K8S / "base" / "configmap.yaml").read_text())["data"].items()
    }
    example = (K8S / "overlays" / "production" / "secrets.env.example").read_text()
    for name in re.findall(r"^([A-Z_0-9]+)=", example, flags=re.M):
        env[name] = Fernet.generate_key().decode() if name == "FIELD_ENCRYPTION_KEY" else secrets.token_urlsafe(50)
    env.update(PATH=os.environ["PATH"], PLATFORM_VAR_DIR=str(tmp_path), HOME=str(tmp_path))
    return env


def test_check_deploy_is_clean_with_the_documented_production_environment(tmp_path):
    env = production_environment(tmp_path)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert env["DJANGO_SECRET_KEY"] not in result.stdout + result.stderr


def test_without_the_production_values_check_deploy_fails(tmp_path):
    """The check above can fail: the same environment with HTTPS switched off is refused."""
    env = production_environment(tmp_path) | {"DJANGO_SECURE_SSL_REDIRECT": "false", "DJANGO_SECURE_HSTS_SECONDS": "0"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0 and "security.W008" in result.stderr + result.stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def production_server(test_database_env, tmp_path_factory):
    """gunicorn with the production environment on the local stack's services (the test database)."""
    tmp_path = tmp_path_factory.mktemp("production-server")
    env = production_environment(tmp_path)
    env.update({name: test_database_env[name] for name in SERVICE_VARIABLES if name in test_database_env})
    # moto accepts any credentials: distinctive ones (unlike the stack's `testing`) can be looked for.
    env.update(
        AWS_ACCESS_KEY_ID="AKIA" + secrets.token_hex(8).upper(),
        AWS_SECRET_ACCESS_KEY=secrets.token_urlsafe(30),
        DJANGO_SETTINGS_MODULE="platform_site.settings",
    )
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=REPO_ROOT, env=env, check=True
    )
    port = _free_port()
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "platform_site.wsgi:application", "--bind", f"127.0.0.1:{port}",
             "--workers", "1", "--access-logfile", "-", "--error-logfile", "-"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log_path.read_text()[-2000:]
            try:
                if httpx.get(f"{url}/healthz", headers={"Host": HOST}, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"gunicorn not ready: {log_path.read_text()[-2000:]}"
            time.sleep(0.2)
        yield url, env, log_path
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=15)


def _https(client: httpx.Client, method: str, path: str, **kwargs) -> httpx.Response:
    """A request as the ingress forwards it after terminating TLS. The client's jar would not send the
    Secure cookies over the plain hop to 127.0.0.1, so they are kept and sent here, as a browser would."""
    jar = client.__dict__.setdefault("secure_jar", {})
    headers = {"Host": HOST, "X-Forwarded-Proto": "https", **kwargs.pop("headers", {})}
    if jar:
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in jar.items())
    response = client.request(method, path, headers=headers, **kwargs)
    for cookie in response.headers.get_list("set-cookie"):
        name, value = cookie.split(";", 1)[0].split("=", 1)
        jar[name] = value
    return response


def test_plain_http_is_redirected_to_https_and_probes_are_not(production_server):
    url, _, _ = production_server
    response = httpx.get(f"{url}/api/v1/websites/", headers={"Host": HOST})
    assert response.status_code == 301
    assert response.headers["location"] == f"https://{HOST}/api/v1/websites/"
    assert httpx.get(f"{url}/healthz", headers={"Host": HOST}).status_code == 200


def test_kubernetes_probes_as_sent_pass(production_server):
    """Regression: kubelet sends the pod's IP as Host, which ALLOWED_HOSTS refuses; the probes name one."""
    url, _, _ = production_server
    web = next(
        d for d in yaml.safe_load_all((K8S / "base" / "web.yaml").read_text()) if d and d["kind"] == "Deployment"
    )
    (container,) = [c for c in web["spec"]["template"]["spec"]["containers"] if c.get("livenessProbe")]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        http_get = container[probe]["httpGet"]
        headers = {"Host": "10.1.2.3:8000"} | {h["name"]: h["value"] for h in http_get.get("httpHeaders", [])}
        response = httpx.get(f"{url}{http_get['path']}", headers=headers)
        assert response.status_code == 200, (probe, response.status_code, response.text[:200])


def test_security_headers_on_https(production_server):
    url, _, _ = production_server
    with httpx.Client(base_url=url) as client:
        response = _https(client, "GET", "/api/v1/websites/")
        login_page = _https(client, "GET", "/admin/login/")
    assert response.status_code == 401  # no credentials; the headers are on every response
    assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains; preload"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert "default-src 'none'" in response.headers["content-security-policy"].split("; ")
    assert response.headers["cross-origin-resource-policy"] == "same-origin"
    assert login_page.status_code == 200 and "script-src 'self'" in login_page.headers["content-security-policy"].split(
        "; "
    )
    assert login_page.headers["cross-origin-opener-policy"] == "same-origin"


def test_the_platform_host_serves_no_tenant_page_in_production(production_server):
    """/sites/<id>/ on the platform's host is a redirect to the website's preview host (the documented
    SITES_PREVIEW_DOMAIN, a separate registrable domain), over HTTPS."""
    url, env, _ = production_server
    website_id = "0b1b7e39-9d0e-4a0a-9a9b-2a6f3c9f8e11"
    with httpx.Client(base_url=url) as client:
        response = _https(client, "GET", f"/sites/{website_id}/about/")
    assert response.status_code == 302
    assert response.headers["location"] == f"https://{website_id}.{env['SITES_PREVIEW_DOMAIN']}/about/"
    assert env["SITES_PREVIEW_DOMAIN"].split(".")[-2:] != env["PLATFORM_HOST"].split(".")[-2:]


@pytest.mark.django_db(transaction=True)
def test_admin_requires_login_and_csrf_and_shows_no_secret(
    production_server, django_user_model, hardening_webhooks, fresh_cache
):
    from apikeys import services as apikey_services
    from tenants import services as tenant_services
    from webhooks import services as webhook_services

    url, env, _ = production_server
    django_user_model.objects.create_superuser("root", "root@example.com", "admin-pass-Hardening-1")
    tenant = tenant_services.tenant_create(name="Secretive", slug="secretive", tier="starter")
    _, raw_key = apikey_services.apikey_create(tenant=tenant, name="admin-page", scopes=["usage:read"])
    endpoint, webhook_secret = webhook_services.endpoint_create(
        tenant=tenant, url="http://127.0.0.1:9/x", event_types=["*"]
    )

    with httpx.Client(base_url=url) as client:
        anonymous = _https(client, "GET", "/admin/")
        assert anonymous.status_code == 302 and anonymous.headers["location"].startswith("/admin/login/")
        login_page = _https(client, "GET", "/admin/login/")
        # __Host- cookies: Secure, Path=/, no Domain; browsers refuse one of these names from any other host.
        csrf_cookie = next(c for c in login_page.headers.get_list("set-cookie") if c.startswith("__Host-csrftoken="))
        assert "Secure" in csrf_cookie and "SameSite=Lax" in csrf_cookie and "Path=/" in csrf_cookie
        assert "domain=" not in csrf_cookie.lower()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
        credentials = {"username": "root", "password": "admin-pass-Hardening-1", "next": "/admin/"}
        referer = {"Referer": f"https://{HOST}/admin/login/"}

        # Without the CSRF token, a correct password is refused.
        refused = _https(client, "POST", "/admin/login/", data=credentials, headers=referer)
        assert refused.status_code == 403 and "CSRF" in refused.text
        assert "__Host-sessionid" not in client.secure_jar

        logged_in = wait_for(
            lambda: (r := _https(client, "POST", "/admin/login/", data={**credentials, "csrfmiddlewaretoken": token},
                                 headers=referer)).status_code == 302 and r,
            timeout=10,
        )  # fmt: skip
        session_cookie = next(c for c in logged_in.headers.get_list("set-cookie") if c.startswith("__Host-sessionid="))
        assert "Secure" in session_cookie and "HttpOnly" in session_cookie and "domain=" not in session_cookie.lower()
        assert logged_in.headers["strict-transport-security"].startswith("max-age=31536000")

        # A logged-in POST without the token is refused too (CSRF is not only on the login form).
        without_token = _https(client, "POST", "/admin/tenants/tenant/add/", data={"name": "x"}, headers=referer)
        assert without_token.status_code == 403

        secrets_shown = {
            "API key": raw_key, "webhook secret": webhook_secret,
            "webhook secret body": webhook_secret.removeprefix("whsec_"),
            "DJANGO_SECRET_KEY": env["DJANGO_SECRET_KEY"], "FIELD_ENCRYPTION_KEY": env["FIELD_ENCRYPTION_KEY"],
            "AWS_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"],
        }  # fmt: skip
        pages = ["/admin/", "/admin/apikeys/apikey/", "/admin/webhooks/endpoint/", "/admin/webhooks/event/",
                 f"/admin/webhooks/endpoint/{endpoint.pk}/change/", "/admin/tenants/tenant/", "/admin/replicas/"]  # fmt: skip
        from apikeys.models import ApiKey

        pages.append(f"/admin/apikeys/apikey/{ApiKey.objects.get(tenant=tenant).pk}/change/")
        for page in pages:
            response = _https(client, "GET", page)
            assert response.status_code == 200, (page, response.status_code)
            shown = [name for name, value in secrets_shown.items() if value in response.text]
            assert not shown, f"{page} shows {shown}"


@pytest.mark.django_db(transaction=True)
def test_an_api_deploy_in_production_mode_logs_no_secret(production_server, fresh_cache, celery_worker):
    """A deployment uploaded with a key through the production server stores its bundle in S3 with the
    server's S3 keys; neither they, the API key nor the Django secret reach the server's log."""
    from apikeys import services as apikey_services
    from tenants import services as tenant_services
    from tenants.models import Deployment
    from tests.sitebundles import bundle_build

    url, env, log_path = production_server
    tenant = tenant_services.tenant_create(name="Deployer", slug="deployer-prod", tier="starter")
    website = tenant_services.website_create(tenant=tenant, name="Prod site")
    _, raw_key = apikey_services.apikey_create(tenant=tenant, name="ci", scopes=["deployments:write"])
    with httpx.Client(base_url=url, timeout=30) as client:
        response = wait_for(
            lambda: (r := _https(
                client, "POST", f"/api/v1/websites/{website.pk}/deployments/",
                headers={"Authorization": f"Bearer {raw_key}"},
                files={"bundle": ("site.tar.gz", bundle_build({"index.html": "prod"}), "application/gzip")},
                data={"description": "from production mode"},
            )).status_code not in (401, 404) and r,  # until the replica has the key and the website
            timeout=10,
        )  # fmt: skip
    assert response.status_code == 201, response.text
    assert Deployment.objects.get(pk=response.json()["id"]).bundle_key  # stored in S3 with the server's keys
    # The worker runs the deployment now; let it finish, or its row locks meet the teardown's TRUNCATE
    # (a deadlock that failed the flush and the tests after it).
    wait_for(
        lambda: (
            Deployment.objects.get(pk=response.json()["id"]).status
            in (Deployment.Status.SUCCEEDED, Deployment.Status.FAILED)
        ),
        timeout=30,
    )
    log = log_path.read_text()
    assert f"/api/v1/websites/{website.pk}/deployments/" in log  # the request is in the log
    for name in ("DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"):
        assert env[name] not in log, f"{name} in the server's log"
    assert raw_key not in log
