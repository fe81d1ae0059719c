"""Site bundles: validate a tar.gz/zip archive and publish its files to object storage.

A bundle is refused, with one clear message naming the problem, when it is not a tar/zip archive,
is empty, exceeds the size or file-count limits, or holds an absolute path, a `..` component, a
link whose target leaves the bundle, or a device/FIFO. Links inside the bundle are resolved to the
file they point at (object storage has no links).
"""

import hashlib
import io
import posixpath
import stat
import tarfile
import zipfile
from dataclasses import dataclass

from django.conf import settings

from cdn.policy import cache_control_for, content_type_for
from platform_site.exceptions import ApplicationError
from platform_site.objectstore import ObjectPut, ObjectStore


class BundleError(ApplicationError):
    def __init__(self, message: str):
        super().__init__("invalid_bundle", message, fields={"bundle": [message]})


@dataclass(frozen=True)
class BundleLimits:
    max_archive_bytes: int
    max_total_bytes: int
    max_files: int

    @classmethod
    def from_settings(cls) -> "BundleLimits":
        return cls(
            max_archive_bytes=settings.DEPLOY_BUNDLE_MAX_BYTES,
            max_total_bytes=settings.DEPLOY_BUNDLE_MAX_UNPACKED_BYTES,
            max_files=settings.DEPLOY_BUNDLE_MAX_FILES,
        )


@dataclass(frozen=True)
class BundleFile:
    path: str  # relative, posix, no leading slash: "index.html", "assets/app.1a2b3c4d.js"
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _clean_name(name: str) -> str | None:
    """The member's path inside the bundle, or a BundleError; None for the archive root itself."""
    if "\x00" in name or "\\" in name:
        raise BundleError(f"{name!r}: invalid characters in a path")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise BundleError(f"{name!r}: absolute paths are not allowed")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise BundleError(f"{name!r}: '..' is not allowed in a path")
    return "/".join(parts) or None


def _link_target(name: str, target: str, *, relative_to_member: bool) -> str:
    if target.startswith("/"):
        raise BundleError(f"{name!r}: a link to an absolute path leaves the bundle")
    base = posixpath.dirname(name) if relative_to_member else ""
    resolved = posixpath.normpath(posixpath.join(base, target))
    if resolved == ".." or resolved.startswith("../") or resolved == ".":
        raise BundleError(f"{name!r}: the link target {target!r} leaves the bundle")
    return resolved


class _Collector:
    def __init__(self, limits: BundleLimits):
        self.limits = limits
        self.files: dict[str, bytes] = {}
        self.links: dict[str, str] = {}
        self.total = 0

    def count(self, name: str) -> None:
        if len(self.files) + len(self.links) >= self.limits.max_files:
            raise BundleError(f"the bundle has more than {self.limits.max_files} files")
        if name in self.files or name in self.links:
            raise BundleError(f"{name!r} appears twice in the bundle")

    def add_file(self, name: str, size: int, read) -> None:
        self.count(name)
        if self.total + size > self.limits.max_total_bytes:
            raise BundleError(f"the bundle unpacks to more than {self.limits.max_total_bytes} bytes")
        # Read no more than the header promised (+1 to notice a lie).
        data = read(size + 1)
        if len(data) != size:
            raise BundleError(f"{name!r}: the archive is corrupt (size mismatch)")
        self.total += size
        self.files[name] = data

    def add_link(self, name: str, target: str) -> None:
        self.count(name)
        self.links[name] = target

    def result(self) -> list[BundleFile]:
        for name, target in self.links.items():
            seen = {name}
            while target in self.links:  # a link to a link, resolved within the bundle
                if target in seen:
                    raise BundleError(f"{name!r}: a link loop")
                seen.add(target)
                target = self.links[target]
            if target not in self.files:
                raise BundleError(f"{name!r}: the link target {target!r} is not a file in the bundle")
            self.files[name] = self.files[target]
        if not self.files:
            raise BundleError("the bundle is empty (no files)")
        return [BundleFile(path=path, data=data) for path, data in sorted(_strip_common_root(self.files).items())]


def _strip_common_root(files: dict[str, bytes]) -> dict[str, bytes]:
    """`tar czf site.tgz site/` puts everything under "site/": serve its contents as the root."""
    tops = {path.split("/", 1)[0] for path in files}
    if len(tops) == 1 and all("/" in path for path in files):
        return {path.split("/", 1)[1]: data for path, data in files.items()}
    return files


def _read_tar(archive: tarfile.TarFile, collector: _Collector) -> None:
    for member in archive:
        name = _clean_name(member.name)
        if member.ischr() or member.isblk() or member.isfifo():
            raise BundleError(f"{member.name!r}: device files and FIFOs are not allowed")
        if name is None or member.isdir():
            continue
        if member.issym():
            collector.add_link(name, _link_target(name, member.linkname, relative_to_member=True))
        elif member.islnk():
            # Hard links name their target relative to the archive root.
            target = _clean_name(member.linkname) or ""
            collector.add_link(name, _link_target(name, target, relative_to_member=False))
        elif member.isfile():
            handle = archive.extractfile(member)
            collector.add_file(name, member.size, handle.read)
        else:
            raise BundleError(f"{member.name!r}: unsupported member type")


def _read_zip(archive: zipfile.ZipFile, collector: _Collector) -> None:
    for info in archive.infolist():
        name = _clean_name(info.filename)
        mode = info.external_attr >> 16
        if mode and (stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
            raise BundleError(f"{info.filename!r}: device files and FIFOs are not allowed")
        if name is None or info.is_dir():
            continue
        if mode and stat.S_ISLNK(mode):
            target = archive.read(info).decode("utf-8", "replace")
            collector.add_link(name, _link_target(name, target, relative_to_member=True))
            continue
        with archive.open(info) as handle:
            collector.add_file(name, info.file_size, handle.read)


def bundle_read(data: bytes, *, limits: BundleLimits | None = None) -> list[BundleFile]:
    """Validate a tar(.gz/.bz2/.xz) or zip archive and return its files, or raise BundleError."""
    limits = limits or BundleLimits.from_settings()
    if not data:
        raise BundleError("the bundle is empty (0 bytes)")
    if len(data) > limits.max_archive_bytes:
        raise BundleError(f"the bundle is larger than {limits.max_archive_bytes} bytes")
    collector = _Collector(limits)
    stream = io.BytesIO(data)
    try:
        if zipfile.is_zipfile(stream):
            with zipfile.ZipFile(stream) as archive:
                _read_zip(archive, collector)
        else:
            stream.seek(0)
            with tarfile.open(fileobj=stream, mode="r:*") as archive:
                _read_tar(archive, collector)
    except BundleError:
        raise
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zipfile.LargeZipFile) as exc:
        raise BundleError(f"not a valid tar.gz or zip archive ({exc.__class__.__name__})") from exc
    except NotImplementedError as exc:  # e.g. an unsupported zip compression method
        raise BundleError(f"unsupported archive feature: {exc}") from exc
    return collector.result()


def bundle_publish(
    *, files: list[BundleFile], store: ObjectStore, prefix: str, cache_overrides: dict | None = None
) -> dict:
    """Write every file under prefix with the strategy's headers; return the manifest."""
    manifest = {}
    puts = []
    for bundle_file in files:
        content_type = content_type_for(bundle_file.path)
        digest = bundle_file.sha256
        manifest[bundle_file.path] = {"sha256": digest, "size": len(bundle_file.data), "content_type": content_type}
        puts.append(
            ObjectPut(
                key=f"{prefix}{bundle_file.path}",
                body=bundle_file.data,
                content_type=content_type,
                cache_control=cache_control_for(
                    "/" + bundle_file.path, content_type=content_type, overrides=cache_overrides
                ),  # fmt: skip
                metadata={"sha256": digest},
            )
        )
    store.put_many(puts)
    return manifest


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
