"""The one object storage: STORAGES-shaped aliases, locations that round-trip, clear configuration errors."""

import io

import pytest

from core.objectstore import (
    LocalObjectStore,
    ObjectNotFound,
    ObjectPut,
    ObjectStorageImproperlyConfigured,
    S3ObjectStore,
    object_store,
)


def test_each_alias_is_built_from_its_own_settings(settings, tmp_path):
    settings.OBJECT_STORAGES = {
        "default": {"BACKEND": "core.objectstore.LocalObjectStore", "OPTIONS": {"root": str(tmp_path / "a")}},
        "tenant_exports": {"BACKEND": "core.objectstore.LocalObjectStore", "OPTIONS": {"root": str(tmp_path / "b")}},
    }
    default, exports = object_store(), object_store("tenant_exports")
    assert (default.alias, default.root, exports.alias, exports.root) == (
        "default", tmp_path / "a", "tenant_exports", tmp_path / "b",
    )  # fmt: skip
    assert object_store() is default  # built once


def test_the_real_mode_stores_are_s3(settings):
    # The local stack sets S3_BUCKET: both aliases go to that bucket.
    assert settings.S3_BUCKET
    for alias in ("default", "tenant_exports"):
        store = object_store(alias)
        assert isinstance(store, S3ObjectStore) and store.bucket == settings.S3_BUCKET
        assert store.key_from_location(store.location("tenant-exports/x.tar.gz")) == "tenant-exports/x.tar.gz"
        assert store.key_from_location("s3://another-bucket/tenant-exports/x.tar.gz") is None


def test_a_local_location_round_trips_and_nothing_outside_the_folder_is_a_key(tmp_path):
    store = LocalObjectStore(root=tmp_path / "objects")
    store.put_file(ObjectPut(key="e/1.tar.gz", body=b"", content_type="application/gzip", cache_control=""),
                   io.BytesIO(b"archive"))  # fmt: skip
    location = store.location("e/1.tar.gz")
    assert store.key_from_location(location) == "e/1.tar.gz"
    assert store.key_from_location(str(tmp_path / "elsewhere.tar.gz")) is None
    out = io.BytesIO()
    store.download(store.key_from_location(location), out)
    assert out.getvalue() == b"archive"
    with pytest.raises(ObjectNotFound):
        store.download("e/2.tar.gz", io.BytesIO())


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"BACKEND": "core.objectstore.Nope"}, "cannot import 'core.objectstore.Nope'"),
        ({"BACKEND": "core.objectstore.LocalObjectStore", "OPTIONS": {"rot": "/tmp"}}, "bad OPTIONS"),
        ({"BACKEND": "core.objectstore.S3ObjectStore", "OPTIONS": {"bucket": ""}}, "needs a bucket"),
    ],
)
def test_a_bad_configuration_names_the_setting_and_alias(settings, config, message):
    settings.OBJECT_STORAGES = {**settings.OBJECT_STORAGES, "default": config}
    with pytest.raises(ObjectStorageImproperlyConfigured, match=message) as raised:
        object_store()
    assert "OBJECT_STORAGES['default']" in str(raised.value)
