import pytest

from cdn.policy import ContentClass, cache_control_for, classify, content_type_for, validate_overrides


@pytest.mark.parametrize(
    "path, content_class, cache_control",
    [
        ("/index.html", ContentClass.HTML, "public, max-age=0, s-maxage=3600, must-revalidate"),
        ("/about/", ContentClass.HTML, "public, max-age=0, s-maxage=3600, must-revalidate"),
        ("/assets/app.1a2b3c4d.js", ContentClass.VERSIONED, "public, max-age=31536000, immutable"),
        ("/static/admin/css/base.0123456789ab.css", ContentClass.VERSIONED, "public, max-age=31536000, immutable"),
        ("/img/logo.png", ContentClass.MEDIA, "public, max-age=2592000"),
        ("/fonts/inter.woff2", ContentClass.MEDIA, "public, max-age=2592000"),
        ("/api/v1/websites/", ContentClass.API, "no-store"),
        ("/style.css", ContentClass.OTHER, "public, max-age=3600"),
        ("/app-deadbeef.js", ContentClass.OTHER, "public, max-age=3600"),  # letters only: a word, not a hash
    ],
)
def test_strategy(path, content_class, cache_control):
    content_type = "text/html" if path.endswith("/") else None
    assert classify(path, content_type) is content_class
    assert cache_control_for(path, content_type=content_type) == cache_control


def test_overrides_and_types():
    assert cache_control_for("/a.html", overrides={"html": "no-cache"}) == "no-cache"
    assert cache_control_for("/a.png", overrides={"html": "no-cache"}) == "public, max-age=2592000"
    assert content_type_for("a.html") == "text/html; charset=utf-8"
    assert content_type_for("a.js") == "text/javascript; charset=utf-8"
    assert content_type_for("data.unknownext") == "application/octet-stream"
    with pytest.raises(ValueError, match="unknown content class"):
        validate_overrides({"pages": "no-cache"})
    with pytest.raises(ValueError, match="one-line"):
        validate_overrides({"html": "x\r\nSet-Cookie: a=b"})


def test_django_static_files_are_versioned(settings):
    assert settings.STORAGES["staticfiles"]["BACKEND"].endswith("ManifestStaticFilesStorage")
