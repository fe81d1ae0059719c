"""One canonical path form (cdn/paths.py) for deploys, the API and every backend."""

import pytest

from cdn.paths import InvalidPath, canonical_path, file_url_path


@pytest.mark.parametrize(
    "given, canonical",
    [
        ("/café/", "/caf%C3%A9/"),
        ("/caf%C3%A9/", "/caf%C3%A9/"),  # encoded once, never again (not /caf%25C3%25A9/)
        ("/caf%c3%a9/", "/caf%C3%A9/"),
        ("/日本/*", "/%E6%97%A5%E6%9C%AC/*"),
        ("/docs/Annual Report.pdf", "/docs/Annual%20Report.pdf"),
        ("/a?b#c", "/a%3Fb%23c"),
        ("/%7Euser/", "/~user/"),  # an escaped unreserved character is that character
        ("/a%2Fb", "/a%2Fb"),  # an escaped slash stays one
        ("/100%.html", "/100%25.html"),
        ("/blog/*", "/blog/*"),
        ("/a//b", "/a//b"),
    ],
)
def test_paths_are_percent_encoded_once_as_browsers_send_them(given, canonical):
    assert canonical_path(given) == canonical
    assert canonical_path(canonical) == canonical  # idempotent: every layer may apply it


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ("/../etc/passwd", "'..'"),
        ("/a/%2e%2e/b", "'..'"),
        ("/a/./b", "'.'"),
        ("//evil.test/x", "'//'"),
        ("relative", "must start with '/'"),
        ("/a\x00b", "control characters"),
        ("/a*b", "only at the end"),
        ("/" + "é" * 2000, "longer than 4000"),
    ],
)
def test_what_no_cache_holds_is_refused(bad, fragment):
    with pytest.raises(InvalidPath, match=fragment):
        canonical_path(bad)


def test_file_names_are_literal():
    assert file_url_path("docs/Annual Report.pdf") == "/docs/Annual%20Report.pdf"
    assert file_url_path("100%25.html") == "/100%2525.html"  # a '%' in a file name is a '%'
    assert file_url_path("a*b.html") == "/a%2Ab.html"
    assert file_url_path("日本/index.html") == "/%E6%97%A5%E6%9C%AC/index.html"
