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


_WORDS = (
    "the platform deploys static sites with a bundle of files served through the cdn cache and purged on every "
    "deploy configuration reference guide install python django worker queue object storage tenant website "
    "hostname invalidation varnish cloudfront cloudflare compression header request response api key webhook"
).split()


def mkdocs_like_site(pages: int = 40, seed: int = 7) -> dict[str, bytes]:
    """A documentation site shaped like mkdocs-material's output: HTML pages with a navigation, a
    minified theme CSS and JS, a search index, a sitemap (plain and .gz), images and fonts."""
    import gzip
    import random

    rng = random.Random(seed)

    def prose(words: int) -> str:
        return " ".join(rng.choice(_WORDS) for _ in range(words))

    nav = "".join(f'<li class="md-nav__item"><a href="/page-{i}/" class="md-nav__link">{prose(3)}</a></li>'
                  for i in range(pages))  # fmt: skip
    files: dict[str, bytes] = {}
    for i in range(pages):
        body = "".join(f"<h2 id=\"s{j}\">{prose(4)}</h2><p>{prose(120)}</p><pre><code>{prose(30)}</code></pre>"
                       for j in range(6))  # fmt: skip
        html = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{prose(4)}</title>'
                f'<link rel="stylesheet" href="/assets/stylesheets/main.0123abcd.min.css"></head><body>'
                f'<nav class="md-nav"><ul class="md-nav__list">{nav}</ul></nav><main class="md-content">{body}'
                f'</main><script src="/assets/javascripts/bundle.89ab4567.min.js"></script></body></html>')  # fmt: skip
        files["index.html" if i == 0 else f"page-{i}/index.html"] = html.encode()
    css = "".join(f".md-{rng.choice(_WORDS)}-{i}{{margin:{i % 7}px;color:#{rng.randrange(4096):03x};"
                  f"display:flex}}" for i in range(3000))  # fmt: skip
    files["assets/stylesheets/main.0123abcd.min.css"] = css.encode()
    js = "".join(f"function {rng.choice(_WORDS)}{i}(e){{return e.{rng.choice(_WORDS)}+{i}}}" for i in range(3000))
    files["assets/javascripts/bundle.89ab4567.min.js"] = js.encode()
    index = [{"location": f"page-{i}/", "title": prose(4), "text": prose(200)} for i in range(pages)]
    import json

    files["search/search_index.json"] = json.dumps({"docs": index}).encode()
    sitemap = "<urlset>" + "".join(f"<url><loc>https://docs.example.test/page-{i}/</loc></url>"
                                   for i in range(pages)) + "</urlset>"  # fmt: skip
    files["sitemap.xml"] = sitemap.encode()
    files["sitemap.xml.gz"] = gzip.compress(sitemap.encode())
    files["assets/images/favicon.png"] = b"\x89PNG\r\n\x1a\n" + rng.randbytes(4000)
    files["assets/images/social.png"] = b"\x89PNG\r\n\x1a\n" + rng.randbytes(40_000)
    files["assets/fonts/roboto.woff2"] = b"wOF2" + rng.randbytes(60_000)
    files["assets/images/logo.svg"] = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">'
                                       + '<path d="M12 2L2 7l10 5 10-5-10-5z"/>' * 40 + "</svg>").encode()  # fmt: skip
    files["404.html"] = b"<!doctype html><h1>404 - Not found</h1>" + prose(50).encode()
    return files
