import tarfile

import pytest

from tenants.bundles import BundleError, BundleLimits, bundle_read
from tests.sitebundles import bundle_build, member, tar_with_members, zip_bundle

LIMITS = BundleLimits(max_archive_bytes=1_000_000, max_total_bytes=1_000_000, max_files=10)


def _refused(data: bytes, fragment: str, limits=LIMITS) -> None:
    with pytest.raises(BundleError) as error:
        bundle_read(data, limits=limits)
    assert fragment in error.value.message
    assert error.value.fields == {"bundle": [error.value.message]}


def test_tar_gz_and_zip_read_alike_with_common_root_stripped():
    files = {"site/index.html": "<h1>hi</h1>", "site/css/a.css": "a{}"}
    for data in (bundle_build(files), zip_bundle(files)):
        read = bundle_read(data, limits=LIMITS)
        assert [(f.path, f.data) for f in read] == [("css/a.css", b"a{}"), ("index.html", b"<h1>hi</h1>")]


def test_links_inside_the_bundle_resolve_to_their_target():
    data = tar_with_members(
        [
            (member("index.html"), b"home"),
            (member("docs/home.html", type_=tarfile.SYMTYPE, linkname="../index.html"), None),
            (member("copy.html", type_=tarfile.LNKTYPE, linkname="index.html"), None),
        ]
    )
    read = {f.path: f.data for f in bundle_read(data, limits=LIMITS)}
    assert read == {"index.html": b"home", "docs/home.html": b"home", "copy.html": b"home"}


@pytest.mark.parametrize(
    "members, fragment",
    [
        ([(member("../evil.html"), b"x")], "'..' is not allowed"),
        ([(member("a/../../evil.html"), b"x")], "'..' is not allowed"),
        ([(member("/etc/cron.d/evil"), b"x")], "absolute paths are not allowed"),
        ([(member("index.html"), b"x"), (member("l", type_=tarfile.SYMTYPE, linkname="../../etc/passwd"), None)],
         "leaves the bundle"),
        ([(member("index.html"), b"x"), (member("l", type_=tarfile.SYMTYPE, linkname="/etc/passwd"), None)],
         "leaves the bundle"),
        ([(member("index.html"), b"x"), (member("h", type_=tarfile.LNKTYPE, linkname="../x"), None)],
         "not allowed"),
        ([(member("dev", type_=tarfile.CHRTYPE), None)], "device files"),
        ([(member("fifo", type_=tarfile.FIFOTYPE), None)], "device files"),
        ([(member("l", type_=tarfile.SYMTYPE, linkname="missing.html"), None)], "not a file in the bundle"),
        ([(member("dir", type_=tarfile.DIRTYPE), None)], "empty"),
    ],
)  # fmt: skip
def test_hostile_tar_members_are_refused(members, fragment):
    _refused(tar_with_members(members), fragment)


def test_zip_traversal_and_absolute_paths_are_refused():
    _refused(zip_bundle({"../evil.html": "x"}), "'..' is not allowed")
    _refused(zip_bundle({"/abs.html": "x"}), "absolute paths")


def test_limits_empty_and_garbage_are_refused():
    _refused(b"", "empty")
    _refused(b"this is not an archive at all", "not a valid tar.gz or zip archive")
    _refused(bundle_build({f"f{i}.html": "x" for i in range(11)}), "more than 10 files")
    _refused(bundle_build({"big.bin": b"x" * 2000}), "unpacks to more than",
             BundleLimits(max_archive_bytes=10_000, max_total_bytes=1000, max_files=10))  # fmt: skip
    _refused(bundle_build({"a.html": "x"}), "larger than", BundleLimits(max_archive_bytes=10, max_total_bytes=10**6,
                                                                           max_files=10))  # fmt: skip
    _refused(bundle_build({"a.html": "x", "a.html/": "y"}), "appears twice")
