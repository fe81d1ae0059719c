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
        (tar_with_members([]), "empty"),
        (tar_with_members([(member("a\nb.html"), b"x")]), "invalid characters"),
    ],
)  # fmt: skip
def test_bad_bundles_fail_the_deployment_in_the_worker_and_the_previous_version_keeps_serving(
    staff_client, website, data, fragment
):
    services.deployment_execute(
        deployment=services.deployment_create(website=website, bundle=bundle_build(site_v1()), run=False)
    )
    response = _upload(staff_client, website, data)
    assert response.status_code == 201, response.content  # accepted: the worker validates it whole
    # What the worker's task does (tests/tenants/test_deploy_api.py runs it on a real worker above).
    deployment = services.deployment_execute(deployment=Deployment.objects.get(pk=response.json()["id"]))
    assert deployment.status == Deployment.Status.FAILED and fragment in deployment.error
    body = staff_client.get(f"/api/v1/deployments/{deployment.pk}/").json()
    assert body["status"] == "failed" and fragment in body["error"]
    assert not deployment.storage_prefix and _home(website) == b"<h1>home v1</h1>"  # nothing published


@pytest.mark.django_db
@pytest.mark.parametrize("data", [b"", b"PK but not really a zip", b"<html>not an archive</html>"])
def test_what_is_not_an_archive_at_all_is_refused_at_once(staff_client, website, data):
    response = _upload(staff_client, website, data)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_bundle"
    assert not Deployment.objects.filter(website=website).exists()


@pytest.mark.django_db
def test_size_limit_is_a_413_and_file_count_limit_fails_the_deployment(staff_client, website, settings):
    settings.DEPLOY_BUNDLE_MAX_FILES = 3
    response = _upload(staff_client, website, bundle_build(site_v1()))
    deployment = services.deployment_execute(deployment=Deployment.objects.get(pk=response.json()["id"]))
    assert deployment.status == "failed" and "more than 3 entries" in deployment.error
    settings.DEPLOY_BUNDLE_MAX_BYTES = 50
    response = _upload(staff_client, website, bundle_build(site_v1()))
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"
    response = staff_client.post(f"/api/v1/websites/{website.pk}/deployments/", {"description": "x"}, format="json")
    assert response.status_code == 400 and "bundle" in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_an_upload_over_the_limit_is_refused_before_its_body_is_read(staff_client, website, settings):
    """The 413 comes from the Content-Length: the body (here a stream that must never be read) is not read."""

    class Unreadable(io.RawIOBase):
        def read(self, *args):
            raise AssertionError("the body was read")

    settings.DEPLOY_BUNDLE_MAX_BYTES = 1024 * 1024
    response = staff_client.generic(
        "POST", f"/api/v1/websites/{website.pk}/deployments/", b"", content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(50 * 1024 * 1024), **{"wsgi.input": Unreadable()},
    )  # fmt: skip
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"


@pytest.mark.django_db
def test_deploy_and_rollback_commands(website, tmp_path, capsys):
    bundle = tmp_path / "site.tar.gz"
    bundle.write_bytes(bundle_build(site_v1()))
    call_command("deploy", "www.a.test", str(bundle))
    bundle.write_bytes(bundle_build(site_v2()))
    call_command("deploy", str(website.pk), str(bundle), "--description", "second")
    assert "is live" in capsys.readouterr().out
    assert _home(website) == b"<h1>home v2</h1>"
    call_command("rollback", "Site A", "--reason", "v2 broke the checkout")
    assert _home(website) == b"<h1>home v1</h1>"
    call_command("rollback", "Site A", "--to", "2", "--reason", "fixed upstream")
    assert _home(website) == b"<h1>home v2</h1>"
    from console.models import AuditLogEntry

    entries = AuditLogEntry.objects.filter(source="cli").order_by("id").values_list("action", "reason")
    assert [entry for entry in entries if entry[0] == "website.rollback"] == [
        ("website.rollback", "v2 broke the checkout"), ("website.rollback", "fixed upstream"),
    ]  # fmt: skip
    with pytest.raises(CommandError, match="--reason"):
        call_command("rollback", "Site A")

    bundle.write_bytes(b"garbage")
    with pytest.raises(CommandError, match="not a valid tar.gz or zip archive"):
        call_command("deploy", "www.a.test", str(bundle))
    with pytest.raises(CommandError, match="no website"):
        call_command("deploy", "nope.example.com", str(bundle))
    with pytest.raises(CommandError, match="no such file"):
        call_command("deploy", "www.a.test", str(tmp_path / "missing.tgz"))
    with pytest.raises(CommandError, match="no deployment #99"):
        call_command("rollback", "www.a.test", "--to", "99", "--reason", "x")
    assert _home(website) == b"<h1>home v2</h1>"
