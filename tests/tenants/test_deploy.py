"""Bundle deploys end to end against moto's S3 server, and the origin that serves them."""

import pytest
from django.conf import settings
from django.test import Client

from cdn.models import Invalidation
from tenants import services
from tenants.models import Deployment
from tests.sitebundles import bundle_build, site_v1, site_v2

pytestmark = pytest.mark.django_db


def deploy(website, files, **kwargs) -> Deployment:
    deployment = services.deployment_create(website=website, bundle=bundle_build(files), run=False, **kwargs)
    return services.deployment_execute(deployment=deployment)


def get(path, host="www.a.test", **headers):
    return Client().get(path, HTTP_HOST=host, **headers)


def preview(website) -> str:
    from tenants.hostnames import preview_host

    return preview_host(website.pk)


def test_deploy_stores_every_file_under_a_versioned_prefix_with_the_strategy_headers(website, s3_client):
    deployment = deploy(website, site_v1())
    assert deployment.status == Deployment.Status.SUCCEEDED, deployment.error
    prefix = f"sites/{website.pk}/deployments/000001-{deployment.pk}/"
    assert deployment.storage_prefix == prefix and deployment.file_count == 6
    listed = s3_client.list_objects_v2(Bucket=settings.S3_BUCKET, Prefix=prefix)
    assert sorted(entry["Key"][len(prefix) :] for entry in listed["Contents"]) == sorted(site_v1())
    expected = {
        "index.html": ("text/html; charset=utf-8", "public, max-age=0, s-maxage=3600, must-revalidate"),
        "assets/app.1a2b3c4d5e.js": ("text/javascript; charset=utf-8", "public, max-age=31536000, immutable"),
        "logo.png": ("image/png", "public, max-age=2592000"),
        "style.css": ("text/css; charset=utf-8", "public, max-age=3600"),
    }
    for path, (content_type, cache_control) in expected.items():
        head = s3_client.head_object(Bucket=settings.S3_BUCKET, Key=prefix + path)
        assert (head["ContentType"], head["CacheControl"]) == (content_type, cache_control), path
        assert head["Metadata"]["sha256"] == deployment.manifest[path]["sha256"]
    body = s3_client.get_object(Bucket=settings.S3_BUCKET, Key=prefix + "index.html")["Body"].read()
    assert body == b"<h1>home v1</h1>"
    website.refresh_from_db()
    assert website.active_deployment_id == deployment.pk
    assert deployment.started_at <= deployment.finished_at and deployment.bundle_key.startswith("bundles/")


def test_origin_serves_by_host_and_on_the_preview_host_with_etag_and_304(website):
    deploy(website, site_v1())
    response = get("/")
    assert response.status_code == 200 and response.content == b"<h1>home v1</h1>"
    assert response["Cache-Control"] == "public, max-age=0, s-maxage=3600, must-revalidate"
    assert response["Content-Type"] == "text/html; charset=utf-8"
    etag = response["ETag"]
    assert etag.startswith('"') and len(etag) > 10
    not_modified = get("/", HTTP_IF_NONE_MATCH=etag)
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified["ETag"] == etag and not_modified["Cache-Control"] == response["Cache-Control"]
    assert get("/", HTTP_IF_NONE_MATCH='"other"').status_code == 200
    # Host matching ignores case and port; directories redirect to their slash form.
    assert get("/about/", host="WWW.A.TEST:8080").content == b"<h1>about v1</h1>"
    redirect = get("/about")
    assert redirect.status_code == 301 and redirect["Location"] == "/about/"
    missing = get("/nope.html")
    assert missing.status_code == 404 and missing.content == b"<h1>not here</h1>"
    asset = get("/assets/app.1a2b3c4d5e.js", host=preview(website))
    assert asset.status_code == 200 and asset["Cache-Control"] == "public, max-age=31536000, immutable"
    assert get("/about", host=preview(website))["Location"] == "/about/"
    assert Client().head("/", HTTP_HOST=preview(website)).content == b""
    assert get("/", host="unknown.example.com").status_code == 400  # Django's host validation still applies
    assert Client().post("/", HTTP_HOST=preview(website)).status_code == 405
    # The API is never stored by a shared cache.
    assert Client().get("/api/v1/websites/")["Cache-Control"] == "no-store"


def test_website_overrides_the_cache_strategy(website):
    services.website_update(website=website)
    website.cache_overrides = {"html": "public, max-age=60"}
    website.save(update_fields=["cache_overrides"])
    deploy(website, site_v1())
    assert get("/")["Cache-Control"] == "public, max-age=60"
    assert get("/logo.png")["Cache-Control"] == "public, max-age=2592000"


def test_new_deploy_purges_changed_paths_and_rollback_restores(website):
    first = deploy(website, site_v1())
    assert not Invalidation.objects.exists()  # nothing was cached before the first deploy
    second = deploy(website, site_v2())
    assert get("/").content == b"<h1>home v2</h1>"
    invalidation = Invalidation.objects.get()
    # index.html changed; the versioned assets never need purging; unchanged files stay cached.
    assert invalidation.paths == ["/", "/index.html"] and invalidation.status == Invalidation.Status.PENDING

    rollback = services.deployment_rollback(website=website)
    assert (rollback.trigger, rollback.source_deployment_id, rollback.number) == ("rollback", first.pk, 3)
    assert rollback.storage_prefix == first.storage_prefix
    website.refresh_from_db()
    assert website.active_deployment_id == rollback.pk
    assert get("/").content == b"<h1>home v1</h1>"
    # The rollback's purge is its own record; the flush sends both in one provider request.
    assert [row.paths for row in Invalidation.objects.order_by("requested_at")] == [["/", "/index.html"]] * 2
    again = services.deployment_rollback(website=website, to=second)
    assert get("/").content == b"<h1>home v2</h1>" and again.source_deployment_id == second.pk


def test_failed_deployment_leaves_the_previous_version_serving(website, s3_client):
    first = deploy(website, site_v1())
    broken = services.deployment_create(website=website, bundle=bundle_build(site_v2()), run=False)
    s3_client.delete_object(Bucket=settings.S3_BUCKET, Key=broken.bundle_key)  # storage lost the upload
    broken = services.deployment_execute(deployment=broken)
    assert broken.status == Deployment.Status.FAILED and "object storage failed" in broken.error
    website.refresh_from_db()
    assert website.active_deployment_id == first.pk
    assert get("/").content == b"<h1>home v1</h1>"


def test_rollback_needs_an_earlier_success(website):
    from core.exceptions import ConflictError

    with pytest.raises(ConflictError):
        services.deployment_rollback(website=website)
    deploy(website, site_v1())
    with pytest.raises(ConflictError):
        services.deployment_rollback(website=website)


def test_an_older_deployment_finishing_last_does_not_replace_a_newer_one(website):
    older = services.deployment_create(website=website, bundle=bundle_build(site_v1()), run=False)
    newer = deploy(website, site_v2())
    older = services.deployment_execute(deployment=older)
    assert older.status == Deployment.Status.SUCCEEDED
    website.refresh_from_db()
    assert website.active_deployment_id == newer.pk
    assert get("/").content == b"<h1>home v2</h1>"
    # It can still be chosen explicitly.
    services.deployment_rollback(website=website, to=older)
    assert get("/").content == b"<h1>home v1</h1>"


def test_suspended_tenant_and_disabled_website_stop_serving(website, tenant, django_capture_on_commit_callbacks):
    deploy(website, site_v1())
    services.website_update(website=website, status="disabled")
    assert get("/").status_code == 404
    services.website_update(website=website, status="active")
    assert get("/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):  # the suspension is published after commit
        services.tenant_suspend(tenant=tenant, reason="unpaid")
    assert get("/").status_code == 404 and get("/", host=preview(website)).status_code == 404


def test_embedded_mode_stores_files_in_a_local_folder(website, tmp_path, settings):
    from core.objectstore import LocalObjectStore, ObjectStorageError, object_store

    settings.OBJECT_STORAGES = {
        **settings.OBJECT_STORAGES,
        "default": {"BACKEND": "core.objectstore.LocalObjectStore", "OPTIONS": {"root": str(tmp_path / "objects")}},
    }
    store = object_store()
    assert isinstance(store, LocalObjectStore) and store.root == tmp_path / "objects"
    deployment = deploy(website, site_v1())
    assert deployment.status == Deployment.Status.SUCCEEDED, deployment.error
    stored = store.get(deployment.storage_prefix + "logo.png")
    assert stored.body == b"\x89PNG\r\n\x1a\nfake" and stored.cache_control == "public, max-age=2592000"
    assert stored.content_type == "image/png"
    assert sorted(k[len(deployment.storage_prefix) :] for k in store.list_keys(deployment.storage_prefix)) == sorted(
        site_v1()
    )
    assert get("/").content == b"<h1>home v1</h1>"
    with pytest.raises(ObjectStorageError):
        store.get("../outside")


def test_a_refused_deployment_leaves_no_uploaded_bundle_behind(website, s3_client):
    from core.exceptions import ConflictError

    services.website_update(website=website, status="disabled")
    with pytest.raises(ConflictError):
        services.deployment_create(website=website, bundle=bundle_build(site_v1()), run=False)
    listed = s3_client.list_objects_v2(Bucket=settings.S3_BUCKET, Prefix=f"bundles/{website.pk}/")
    assert listed.get("KeyCount", 0) == 0


def test_admin_pages_show_deployments_and_cdn_settings(website, admin_client_logged_in):
    client = admin_client_logged_in
    deployment = deploy(website, site_v1())
    page = client.get(f"/admin/tenants/deployment/{deployment.pk}/change/")
    assert page.status_code == 200 and deployment.storage_prefix.encode() in page.content
    page = client.get(f"/admin/tenants/website/{website.pk}/change/")
    assert page.status_code == 200 and b"cache_overrides" in page.content
    response = client.post(f"/admin/tenants/website/{website.pk}/change/", {
        "tenant": website.tenant_id, "name": website.name, "status": "active", "cdn_backend": "default",
        "cdn_config": "{}", "cache_overrides": '{"pages": "no-cache"}',
        "hostnames-TOTAL_FORMS": 0, "hostnames-INITIAL_FORMS": 0,
        "deployments-TOTAL_FORMS": 0, "deployments-INITIAL_FORMS": 0,
    })  # fmt: skip
    assert response.status_code == 200 and b"unknown content class" in response.content
