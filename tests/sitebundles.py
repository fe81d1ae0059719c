"""Building site bundles (good and hostile) for tests."""

import io
import tarfile
import zipfile

from tenants.bundles import bundle_build

__all__ = ["bundle_build", "upload_file", "tar_with_members", "zip_bundle", "site_v1", "site_v2"]


def upload_file(data: bytes, name: str = "site.tar.gz") -> io.BytesIO:
    upload = io.BytesIO(data)
    upload.name = name
    return upload


def tar_with_members(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def member(name: str, *, type_=tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = type_
    info.linkname = linkname
    info.mode = 0o644
    return info


def zip_bundle(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, content in files.items():
            archive.writestr(path, content)
    return buffer.getvalue()


def site_v1() -> dict[str, str | bytes]:
    return {
        "index.html": "<h1>home v1</h1>",
        "about/index.html": "<h1>about v1</h1>",
        "assets/app.1a2b3c4d5e.js": "console.log('v1')",
        "style.css": "body{color:black}",
        "logo.png": b"\x89PNG\r\n\x1a\nfake",
        "404.html": "<h1>not here</h1>",
    }


def site_v2() -> dict[str, str | bytes]:
    files = site_v1()
    files["index.html"] = "<h1>home v2</h1>"
    files["assets/app.9f8e7d6c5b.js"] = "console.log('v2')"
    del files["assets/app.1a2b3c4d5e.js"]
    return files
