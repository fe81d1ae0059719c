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
    _refused(bundle_build({f"f{i}.html": "x" for i in range(11)}), "more than 10 entries")
    _refused(bundle_build({"big.bin": b"x" * 2000}), "unpacks to more than",
             BundleLimits(max_archive_bytes=10_000, max_total_bytes=1000, max_files=10))  # fmt: skip
    _refused(bundle_build({"a.html": "x"}), "larger than", BundleLimits(max_archive_bytes=10, max_total_bytes=10**6,
                                                                           max_files=10))  # fmt: skip
    _refused(bundle_build({"a.html": "x", "a.html/": "y"}), "appears twice")


def test_every_entry_counts_toward_the_limit_directories_too():
    directories = [(member(f"d{i}/", type_=tarfile.DIRTYPE), None) for i in range(11)]
    _refused(tar_with_members([(member("index.html"), b"x"), *directories]), "more than 10 entries")
    _refused(zip_bundle({"index.html": "x", **{f"d{i}/": "" for i in range(11)}}), "more than 10 entries")


def test_oversized_tar_headers_are_refused_before_they_are_read():
    long_name = member("x" * 70_000 + ".html")  # a GNU long name / PAX header of 70 KB
    _refused(tar_with_members([(long_name, b"x")]), "tar header")


@pytest.mark.parametrize("name", ["a\nb.html", "a\x7fb.html", "a\\b.html", "x/" + "é" * 500 + ".html"])
def test_names_that_cannot_be_keys_or_urls_are_refused(name):
    _refused(tar_with_members([(member(name), b"x")]), "path")


def test_a_zip_declaring_more_entries_than_allowed_is_refused_before_its_directory_is_read():
    import io
    import struct

    data = bytearray(zip_bundle({"index.html": "x"}))
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 60_000, 60_000)  # entries on this disk, total
    _refused(bytes(data), "more than 10 entries")
    assert io.BytesIO(data)  # the archive itself is otherwise untouched


def test_a_large_member_is_streamed_not_held(tmp_path):
    """64 MiB of zeros compress to ~64 KB: scanned and published a chunk at a time (the benchmark measures
    the memory: benchmarks.deploy_cdn's validate_peak_rss_mib)."""
    import hashlib
    import io

    from core.objectstore import LocalObjectStore
    from tenants.bundles import bundle_publish, bundle_scan

    size = 64 * 1024 * 1024
    compressed = io.BytesIO()
    with tarfile.open(fileobj=compressed, mode="w:gz", compresslevel=1) as archive:
        info = member("big.bin")
        info.size = size

        class Zeros(io.RawIOBase):
            left = size

            def readable(self):
                return True

            def readinto(self, buffer):
                count = min(len(buffer), self.left)
                buffer[:count] = b"\0" * count
                self.left -= count
                return count

        archive.addfile(info, io.BufferedReader(Zeros()))
        index_html = member("index.html")
        index_html.size = 2
        archive.addfile(index_html, io.BytesIO(b"hi"))
    data = compressed.getvalue()
    limits = BundleLimits(max_archive_bytes=10_000_000, max_total_bytes=300 * 1024 * 1024, max_files=10)
    fileobj = io.BytesIO(data)
    index = bundle_scan(fileobj, limits=limits)
    assert index.files == {"big.bin": size, "index.html": 2}
    store = LocalObjectStore(root=tmp_path)
    manifest = bundle_publish(fileobj=fileobj, index=index, store=store, prefix="p/")
    zeros = hashlib.sha256()
    for _ in range(size // (1024 * 1024)):
        zeros.update(b"\0" * (1024 * 1024))
    assert manifest["big.bin"] == {
        "sha256": zeros.hexdigest(),
        "size": size,
        "content_type": "application/octet-stream",
    }
    assert (tmp_path / "p" / "big.bin").stat().st_size == size
    _refused(data, "unpacks to more than", BundleLimits(max_archive_bytes=10_000_000, max_total_bytes=50_000_000,
                                                         max_files=10))  # fmt: skip
