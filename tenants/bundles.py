"""Site bundles: validate a tar(.gz/.bz2/.xz) or zip archive and publish its files to object storage,
in bounded memory whatever the archive holds.

The request only checks what is cheap (size, not empty, an archive's magic bytes) and streams the upload
to object storage; the worker spools it to a temporary file and reads it twice:

1. `bundle_scan`: every entry (files, directories, links) counts toward DEPLOY_BUNDLE_MAX_FILES, declared
   sizes toward DEPLOY_BUNDLE_MAX_UNPACKED_BYTES, and each name is checked; nothing is kept but names and
   sizes. Refused, with one clear message naming the problem: not a tar/zip archive, empty, over a limit,
   an absolute path, a `..` component, a control character, a name too long for a storage key, a link
   whose target leaves the bundle, a device/FIFO, an oversized tar header.
2. `bundle_publish`: each file is read a chunk at a time, hashed and stored (small ones in parallel,
   large ones streamed through a spooled temporary file). Links inside the bundle are stored as copies of
   the file they point at (object storage has no links).

Longer than ~400 lines on purpose: one topic, a bundle from upload to published files. The cheap check,
the scan and the publish share the limits, the name rules and the archive readers, and the scan's index is
what the publish trusts; apart, the rules a bundle must pass would be read in two places.
"""

import hashlib
import io
import posixpath
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from cdn.policy import cache_control_for, content_type_for
from core.configuration import FromSettings, setting
from core.exceptions import ApplicationError
from core.objectstore import ObjectPut, ObjectStore

# S3 keys are at most 1,024 bytes; a deployment's prefix takes about 100 of them.
MAX_PATH_BYTES = 900
# GNU long names and PAX headers are read whole by tarfile: a hostile size must not become memory.
MAX_TAR_HEADER_BYTES = 64 * 1024
# Files up to this size are read into memory and stored in parallel; larger ones are streamed.
SMALL_FILE_BYTES = 1024 * 1024
CHUNK_BYTES = 256 * 1024
# The zip central directory is read whole by zipfile: bounded by what max_files entries can need.
ZIP_DIRECTORY_BYTES_PER_ENTRY = 1024

Progress = Callable[[], None]


class BundleError(ApplicationError):
    def __init__(self, message: str):
        super().__init__("invalid_bundle", message, fields={"bundle": [message]})


@dataclass(frozen=True)
class BundleLimits(FromSettings):
    max_archive_bytes: int = setting("DEPLOY_BUNDLE_MAX_BYTES")
    max_total_bytes: int = setting("DEPLOY_BUNDLE_MAX_UNPACKED_BYTES")
    max_files: int = setting("DEPLOY_BUNDLE_MAX_FILES")


@dataclass
class BundleIndex:
    """What a scan found: member name -> size for files, member name -> target for links."""

    files: dict[str, int] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    root: str = ""  # a common top folder ("site/") served as the root

    def published_path(self, name: str) -> str:
        return name[len(self.root) :]


# --- the cheap check, in the request ---------------------------------------------------------------

_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"PK\x03\x04", b"PK\x05\x06")


def bundle_check_upload(fileobj: BinaryIO, *, size: int, limits: BundleLimits | None = None) -> str:
    """Size and magic bytes of an upload (the rest is the worker's); its extension: 'zip' or 'tar'."""
    limits = limits or BundleLimits.from_settings()
    if size == 0:
        raise BundleError("the bundle is empty (0 bytes)")
    if size > limits.max_archive_bytes:
        raise ApplicationError(
            "request_too_large", f"the bundle is larger than {limits.max_archive_bytes} bytes",
            fields={"bundle": [f"At most {limits.max_archive_bytes} bytes."]}, status_code=413,
        )  # fmt: skip
    position = fileobj.tell()
    head = fileobj.read(512)
    fileobj.seek(position)
    if head.startswith(_MAGIC[3:]):
        return "zip"
    if head.startswith(_MAGIC[:3]) or head[257:262] == b"ustar":
        return "tar"
    raise BundleError("not a valid tar.gz or zip archive (unknown format)")


# --- pass 1: scan ---------------------------------------------------------------------------------


def _clean_name(name: str) -> str | None:
    """The member's path inside the bundle, or a BundleError; None for the archive root itself."""
    if any(ord(char) < 32 or ord(char) == 127 for char in name) or "\\" in name:
        raise BundleError(f"{name[:200]!r}: invalid characters in a path")
    if any("\udc80" <= char <= "\udcff" for char in name):
        raise BundleError(f"{name[:200]!r}: a path that is not valid UTF-8")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise BundleError(f"{name[:200]!r}: absolute paths are not allowed")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise BundleError(f"{name[:200]!r}: '..' is not allowed in a path")
    cleaned = "/".join(parts)
    if len(cleaned.encode()) > MAX_PATH_BYTES:
        raise BundleError(f"{name[:100]!r}...: a path is longer than {MAX_PATH_BYTES} bytes")
    return cleaned or None


def _link_target(name: str, target: str, *, relative_to_member: bool) -> str:
    if target.startswith("/"):
        raise BundleError(f"{name!r}: a link to an absolute path leaves the bundle")
    base = posixpath.dirname(name) if relative_to_member else ""
    resolved = posixpath.normpath(posixpath.join(base, target))
    if resolved == ".." or resolved.startswith("../") or resolved == ".":
        raise BundleError(f"{name!r}: the link target {target!r} leaves the bundle")
    return resolved


class _BoundedTarInfo(tarfile.TarInfo):
    """Refuses a long-name or PAX header larger than MAX_TAR_HEADER_BYTES before tarfile reads it whole."""

    def _proc_member(self, tarfile_):
        extended = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
                    tarfile.SOLARIS_XHDTYPE)  # fmt: skip
        if self.type in extended and self.size > MAX_TAR_HEADER_BYTES:
            raise BundleError(f"a tar header of {self.size} bytes (at most {MAX_TAR_HEADER_BYTES})")
        return super()._proc_member(tarfile_)


class _Scan:
    def __init__(self, limits: BundleLimits, progress: Progress | None):
        self.limits = limits
        self.progress = progress or (lambda: None)
        self.index = BundleIndex()
        self.names: set[str] = set()
        self.entries = 0
        self.total = 0

    def entry(self, name: str | None) -> None:
        """Every member counts, directories too: an archive of millions of entries stops here."""
        self.entries += 1
        if self.entries > self.limits.max_files:
            raise BundleError(f"the bundle has more than {self.limits.max_files} entries (files, directories, links)")
        if self.entries % 200 == 0:
            self.progress()
        if name is not None:
            if name in self.names:
                raise BundleError(f"{name!r} appears twice in the bundle")
            self.names.add(name)

    def file(self, name: str, size: int) -> None:
        self.total += size
        if self.total > self.limits.max_total_bytes:
            raise BundleError(f"the bundle unpacks to more than {self.limits.max_total_bytes} bytes")
        self.index.files[name] = size

    def link(self, name: str, target: str) -> None:
        self.index.links[name] = target

    def result(self) -> BundleIndex:
        files, links = self.index.files, self.index.links
        for name, target in list(links.items()):
            seen = {name}
            while target in links:  # a link to a link, resolved within the bundle
                if target in seen:
                    raise BundleError(f"{name!r}: a link loop")
                seen.add(target)
                target = links[target]
            if target not in files:
                raise BundleError(f"{name!r}: the link target {target!r} is not a file in the bundle")
            links[name] = target
        if not files:
            raise BundleError("the bundle is empty (no files)")
        # `tar czf site.tgz site/` puts everything under "site/": serve its contents as the root.
        names = [*files, *links]
        tops = {name.split("/", 1)[0] for name in names}
        if len(tops) == 1 and all("/" in name for name in names):
            self.index.root = tops.pop() + "/"
        return self.index


def _tar_members(archive: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    for member in archive:
        yield member
        archive.members = []  # stream mode keeps every header otherwise


def _scan_tar(fileobj: BinaryIO, scan: _Scan) -> None:
    with tarfile.open(fileobj=fileobj, mode="r|*", tarinfo=_BoundedTarInfo) as archive:
        for member in _tar_members(archive):
            name = _clean_name(member.name)
            if member.ischr() or member.isblk() or member.isfifo():
                raise BundleError(f"{member.name[:200]!r}: device files and FIFOs are not allowed")
            scan.entry(None if member.isdir() else name)
            if name is None or member.isdir():
                continue
            if member.issym():
                scan.link(name, _link_target(name, member.linkname, relative_to_member=True))
            elif member.islnk():
                # Hard links name their target relative to the archive root.
                scan.link(name, _link_target(name, _clean_name(member.linkname) or "", relative_to_member=False))
            elif member.issparse():
                raise BundleError(f"{member.name[:200]!r}: sparse files are not supported")
            elif member.isfile():
                scan.file(name, member.size)
            else:
                raise BundleError(f"{member.name[:200]!r}: unsupported member type")


def _zip_open(fileobj: BinaryIO, limits: BundleLimits) -> zipfile.ZipFile:
    # zipfile reads the whole central directory into objects: check its declared size first.
    end = zipfile._EndRecData(fileobj)  # noqa: SLF001 - the stdlib's own end-of-directory reader
    if end is None:
        raise BundleError("not a valid tar.gz or zip archive (no zip directory)")
    if end[zipfile._ECD_ENTRIES_TOTAL] > limits.max_files:
        raise BundleError(f"the bundle has more than {limits.max_files} entries (files, directories, links)")
    if end[zipfile._ECD_SIZE] > (limits.max_files + 1) * ZIP_DIRECTORY_BYTES_PER_ENTRY:
        raise BundleError("the zip directory is larger than the entry limit allows")
    fileobj.seek(0)
    return zipfile.ZipFile(fileobj)


def _zip_mode(info: zipfile.ZipInfo) -> int:
    return info.external_attr >> 16


def _scan_zip(fileobj: BinaryIO, scan: _Scan) -> None:
    with _zip_open(fileobj, scan.limits) as archive:
        for info in archive.infolist():
            name = _clean_name(info.filename)
            mode = _zip_mode(info)
            if mode and (stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
                raise BundleError(f"{info.filename[:200]!r}: device files and FIFOs are not allowed")
            scan.entry(None if info.is_dir() else name)
            if name is None or info.is_dir():
                continue
            if mode and stat.S_ISLNK(mode):
                if info.file_size > MAX_PATH_BYTES * 4:
                    raise BundleError(f"{name!r}: a link target longer than {MAX_PATH_BYTES * 4} bytes")
                target = archive.read(info).decode("utf-8", "replace")
                scan.link(name, _link_target(name, target, relative_to_member=True))
                continue
            scan.file(name, info.file_size)
            # The declared size is only a claim: read it through (CRC checked, never held) to hold zipfile to it.
            with archive.open(info) as handle:
                read = 0
                while chunk := handle.read(CHUNK_BYTES):
                    read += len(chunk)
                    if read > info.file_size:
                        raise BundleError(f"{name!r}: the archive is corrupt (size mismatch)")
                    scan.progress()
            if read != info.file_size:
                raise BundleError(f"{name!r}: the archive is corrupt (size mismatch)")


def _archive_errors():
    return (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zipfile.LargeZipFile, ValueError)


def _is_zip(fileobj: BinaryIO) -> bool:
    fileobj.seek(0)
    is_zip = zipfile.is_zipfile(fileobj)
    fileobj.seek(0)
    return is_zip


def bundle_scan(
    fileobj: BinaryIO, *, limits: BundleLimits | None = None, progress: Progress | None = None
) -> BundleIndex:
    """Validate a tar(.gz/.bz2/.xz) or zip archive (a seekable file) without keeping its content."""
    limits = limits or BundleLimits.from_settings()
    fileobj.seek(0, io.SEEK_END)
    size = fileobj.tell()
    if size == 0:
        raise BundleError("the bundle is empty (0 bytes)")
    if size > limits.max_archive_bytes:
        raise BundleError(f"the bundle is larger than {limits.max_archive_bytes} bytes")
    scan = _Scan(limits, progress)
    try:
        if _is_zip(fileobj):
            _scan_zip(fileobj, scan)
        else:
            _scan_tar(fileobj, scan)
    except BundleError:
        raise
    except _archive_errors() as exc:
        raise BundleError(f"not a valid tar.gz or zip archive ({exc.__class__.__name__})") from exc
    except NotImplementedError as exc:  # e.g. an unsupported zip compression method
        raise BundleError(f"unsupported archive feature: {exc}") from exc
    except RecursionError as exc:
        raise BundleError("not a valid tar.gz or zip archive (nested too deeply)") from exc
    return scan.result()


# --- pass 2: publish ------------------------------------------------------------------------------


def _members(fileobj: BinaryIO, index: BundleIndex) -> Iterator[tuple[str, BinaryIO]]:
    """(name, readable) for every file of a scanned archive, in archive order."""
    fileobj.seek(0)
    if _is_zip(fileobj):
        with zipfile.ZipFile(fileobj) as archive:
            for info in archive.infolist():
                name = _clean_name(info.filename)
                if name in index.files:
                    with archive.open(info) as handle:
                        yield name, handle
        return
    with tarfile.open(fileobj=fileobj, mode="r|*", tarinfo=_BoundedTarInfo) as archive:
        for member in _tar_members(archive):
            name = _clean_name(member.name)
            if name in index.files and member.isfile():
                yield name, archive.extractfile(member)


class _Uploads:
    """Small files are read into batches of up to BATCH_BYTES, each stored by put_many (UPLOAD_CONCURRENCY at a time):
    memory stays bounded by one batch, and reading (decompression) does not compete with the upload
    threads for the interpreter (a whole typical site is one batch)."""

    BATCH_BYTES = 16 * 1024 * 1024

    def __init__(self, store: ObjectStore, progress: Progress):
        self.store = store
        self.progress = progress
        self.batch: list[ObjectPut] = []
        self.batch_bytes = 0

    def submit(self, item: ObjectPut) -> None:
        if self.batch and self.batch_bytes + len(item.body) > self.BATCH_BYTES:
            self.finish()
        self.batch.append(item)
        self.batch_bytes += len(item.body)

    def finish(self) -> None:
        batch, self.batch, self.batch_bytes = self.batch, [], 0
        if batch:
            self.progress()
            self.store.put_many(batch)
            self.progress()


def _headers(path: str, digest: str, cache_overrides: dict | None) -> tuple[str, str, dict]:
    content_type = content_type_for(path)
    cache_control = cache_control_for("/" + path, content_type=content_type, overrides=cache_overrides)
    return content_type, cache_control, {"sha256": digest}


def bundle_publish(
    *,
    fileobj: BinaryIO,
    index: BundleIndex,
    store: ObjectStore,
    prefix: str,
    cache_overrides: dict | None = None,
    progress: Progress | None = None,
) -> dict:
    """Store every file of a scanned bundle under prefix with the strategy's headers; return the manifest
    (path -> sha256, size, content type)."""
    progress = progress or (lambda: None)
    manifest: dict[str, dict] = {}
    uploads = _Uploads(store, progress)
    for name, handle in _members(fileobj, index):
        path = index.published_path(name)
        digest = hashlib.sha256()
        if index.files[name] <= SMALL_FILE_BYTES:
            body = handle.read(SMALL_FILE_BYTES + 1)
            digest.update(body)
            if len(body) != index.files[name]:
                raise BundleError(f"{name!r}: the archive is corrupt (size mismatch)")
            content_type, cache_control, metadata = _headers(path, digest.hexdigest(), cache_overrides)
            uploads.submit(ObjectPut(key=prefix + path, body=body, content_type=content_type,
                                     cache_control=cache_control, metadata=metadata))  # fmt: skip
        else:
            with tempfile.SpooledTemporaryFile(max_size=SMALL_FILE_BYTES) as spool:
                size = 0
                while chunk := handle.read(CHUNK_BYTES):
                    digest.update(chunk)
                    spool.write(chunk)
                    size += len(chunk)
                    progress()
                if size != index.files[name]:
                    raise BundleError(f"{name!r}: the archive is corrupt (size mismatch)")
                spool.seek(0)
                content_type, cache_control, metadata = _headers(path, digest.hexdigest(), cache_overrides)
                store.put_file(ObjectPut(key=prefix + path, body=b"", content_type=content_type,
                                         cache_control=cache_control, metadata=metadata), spool)  # fmt: skip
            progress()
        manifest[path] = {"sha256": digest.hexdigest(), "size": index.files[name], "content_type": content_type}
    uploads.finish()
    for name, target in index.links.items():
        path, target_path = index.published_path(name), index.published_path(target)
        entry = manifest[target_path]
        content_type, cache_control, metadata = _headers(path, entry["sha256"], cache_overrides)
        store.copy(prefix + target_path, ObjectPut(key=prefix + path, body=b"", content_type=content_type,
                                                   cache_control=cache_control, metadata=metadata))  # fmt: skip
        manifest[path] = {**entry, "content_type": content_type}
        progress()
    return dict(sorted(manifest.items()))


# --- helpers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleFile:
    path: str
    data: bytes


def bundle_read(data: bytes, *, limits: BundleLimits | None = None) -> list[BundleFile]:
    """Scan a small in-memory bundle and return its files with their content (tests, tools)."""
    from core.objectstore import LocalObjectStore

    with tempfile.TemporaryDirectory() as folder:
        store = LocalObjectStore(root=folder)
        fileobj = io.BytesIO(data)
        index = bundle_scan(fileobj, limits=limits)
        manifest = bundle_publish(fileobj=fileobj, index=index, store=store, prefix="b/")
        return [BundleFile(path=path, data=store.get("b/" + path).body) for path in manifest]


def bundle_build(files: dict[str, bytes | str]) -> bytes:
    """A tar.gz of the given files (path -> content): demo content and tests."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
