"""Uploading bundles through the API and the commands; bad bundles refused, previous version kept."""

import io
import tarfile

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from tenants import services
from tenants.models import Deployment
from tests.helpers import wait_for
from tests.sitebundles import bundle_build, member, site_v1, site_v2, tar_with_members, zip_bundle


def _upload(client, website, data: bytes, name="site.tar.gz"):
    upload = io.BytesIO(data)
    upload.name = name
    return client.post(f"/api/v1/websites/{website.pk}/deployments/", {"bundle": upload, "description": "v"},
                       format="multipart")  # fmt: skip


def _home(website) -> bytes:
    from tenants.hostnames import preview_host

    return Client().get("/", HTTP_HOST=preview_host(website.pk)).content


@pytest.mark.django_db(transaction=True)
def test_upload_through_the_api_is_deployed_by_a_worker(staff_client, website, celery_worker):
    response = _upload(staff_client, website, zip_bundle(site_v1()), name="site.zip")
    assert response.status_code == 201, response.content
    deployment_id = response.json()["id"]

    def finished():
        status = staff_client.get(f"/api/v1/deployments/{deployment_id}/").json()
        return status if status["status"] in ("succeeded", "failed") else None

    status = wait_for(finished, timeout=30)
    assert status["status"] == "succeeded", status["error"]
    assert status["file_count"] == 6 and status["started_at"] and status["finished_at"]
    assert Client().get("/", HTTP_HOST="www.a.test").content == b"<h1>home v1</h1>"

    response = staff_client.post(f"/api/v1/websites/{website.pk}/rollback/", {}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "invalid_state"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data, fragment",
    [
        (tar_with_members([(member("../escape.html"), b"x")]), "'..' is not allowed"),
        (tar_with_members([(member("/etc/passwd"), b"x")]), "absolute paths"),
        (tar_with_members([(member("index.html"), b"x"), (member("l", type_=tarfile.SYMTYPE, linkname="../../x"), None)]),
         "leaves the bundle"),
        (b"", "empty"),
        (tar_with_members([]), "empty"),
        (b"PK but not really a zip", "not a valid tar.gz or zip archive"),
    ],
)  # fmt: skip
def test_bad_bundles_are_refused_and_the_previous_version_keeps_serving(staff_client, website, data, fragment):
    services.deployment_execute(
        deployment=services.deployment_create(website=website, bundle=bundle_build(site_v1()), run=False)
    )
    response = _upload(staff_client, website, data)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_bundle" and fragment in error["fields"]["bundle"][0]
    assert Deployment.objects.filter(website=website).count() == 1  # nothing half-written
    assert _home(website) == b"<h1>home v1</h1>"


@pytest.mark.django_db
def test_size_and_file_count_limits_and_missing_field(staff_client, website, settings):
    settings.DEPLOY_BUNDLE_MAX_FILES = 3
    response = _upload(staff_client, website, bundle_build(site_v1()))
    assert response.status_code == 400 and "more than 3 files" in response.json()["error"]["message"]
    settings.DEPLOY_BUNDLE_MAX_BYTES = 50
    response = _upload(staff_client, website, bundle_build(site_v1()))
    assert response.status_code == 400 and "larger than 50 bytes" in response.json()["error"]["message"]
    response = staff_client.post(f"/api/v1/websites/{website.pk}/deployments/", {"description": "x"}, format="json")
    assert response.status_code == 400 and "bundle" in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_deploy_and_rollback_commands(website, tmp_path, capsys):
    bundle = tmp_path / "site.tar.gz"
    bundle.write_bytes(bundle_build(site_v1()))
    call_command("deploy", "www.a.test", str(bundle))
    bundle.write_bytes(bundle_build(site_v2()))
    call_command("deploy", str(website.pk), str(bundle), "--description", "second")
    assert "is live" in capsys.readouterr().out
    assert _home(website) == b"<h1>home v2</h1>"
    call_command("rollback", "Site A")
    assert _home(website) == b"<h1>home v1</h1>"
    call_command("rollback", "Site A", "--to", "2")
    assert _home(website) == b"<h1>home v2</h1>"

    bundle.write_bytes(b"garbage")
    with pytest.raises(CommandError, match="not a valid tar.gz or zip archive"):
        call_command("deploy", "www.a.test", str(bundle))
    with pytest.raises(CommandError, match="no website"):
        call_command("deploy", "nope.example.com", str(bundle))
    with pytest.raises(CommandError, match="no such file"):
        call_command("deploy", "www.a.test", str(tmp_path / "missing.tgz"))
    with pytest.raises(CommandError, match="no deployment #99"):
        call_command("rollback", "www.a.test", "--to", "99")
    assert _home(website) == b"<h1>home v2</h1>"
