"""The platform host's responses: Content-Security-Policy (django-csp) without inline script,
Cross-Origin-Opener-Policy and Cross-Origin-Resource-Policy. (In a browser, with every page the admin
shows: tests/e2e/test_tenant_boundary.py.)"""

import re
from pathlib import Path

import pytest
from django.test import Client

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.django_db


def _directives(header: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.fixture
def operator(admin_client_logged_in):
    return admin_client_logged_in


def test_admin_console_docs_and_api_responses_carry_the_policies(operator, website):
    pages = ["/admin/", "/admin/console/", "/admin/tenants/website/", f"/admin/tenants/website/{website.pk}/change/",
             "/admin/tenants/hostname/", "/api/docs/", "/admin/replicas/"]  # fmt: skip
    for path in pages:
        response = operator.get(path)
        assert response.status_code == 200 and response["Content-Type"].startswith("text/html"), path
        csp = _directives(response["Content-Security-Policy"])
        assert csp["script-src"] == ["'self'"], (path, csp)  # no 'unsafe-inline', no 'unsafe-eval'
        assert csp["default-src"] == ["'self'"] and csp["object-src"] == ["'none'"]
        assert csp["frame-ancestors"] == ["'none'"] and csp["base-uri"] == ["'none'"]
        assert response["Cross-Origin-Opener-Policy"] == "same-origin", path
        assert response["Cross-Origin-Resource-Policy"] == "same-origin", path
    # Anything that is not a page (JSON, the schema, the docs' script, static files) allows nothing at all.
    for path in ("/api/v1/websites/", "/api/schema/", "/api/docs/?script=", "/healthz", "/api/v1/nope/"):
        response = operator.get(path)
        assert response.status_code in (200, 404), path
        assert _directives(response["Content-Security-Policy"])["default-src"] == ["'none'"], path
        assert response["Cross-Origin-Resource-Policy"] == "same-origin", path
    anonymous = Client().get("/admin/login/")
    assert "script-src 'self'" in anonymous["Content-Security-Policy"]


def test_the_docs_page_loads_its_script_from_a_url_not_inline(client):
    page = client.get("/api/docs/").content.decode()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, flags=re.S)
    assert scripts and all("src=" in attributes and not body.strip() for attributes, body in scripts), scripts
    assert "<style" not in page
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in script.content and b"validatorUrl" in script.content


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
EVENT_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)
# A style attribute in markup; Alpine's x-bind:style with an object sets properties through the CSSOM,
# which the CSP allows.
STYLE_ATTRIBUTE = re.compile(r"(?<![:\w-])style=", re.I)
UNFOLD_ALPINE = re.compile(r"unfold/js/alpine/alpine(\.[0-9a-f]{12})?\.js")
UNNONCED_STYLE = re.compile(r'<style(?![^>]*\bnonce="\{\{ request\.csp_nonce \}\}")', re.I)


def _our_templates() -> list[Path]:
    roots = [REPO_ROOT / "templates", *REPO_ROOT.glob("*/templates")]
    return [path for root in roots for path in root.rglob("*.html") if ".venv" not in path.parts]


def test_no_template_of_ours_has_inline_script_or_style_attributes():
    templates = _our_templates()
    assert len(templates) >= 8
    for path in templates:
        text = path.read_text()
        assert not INLINE_SCRIPT.search(text), f"{path}: inline <script>"
        assert not EVENT_HANDLER.search(text), f"{path}: an on* event handler attribute"
        assert "javascript:" not in text and not STYLE_ATTRIBUTE.search(text), path
        # One inline <style> is allowed, under the response's nonce (the admin theme's colours).
        assert not UNNONCED_STYLE.search(text), path


def test_rendered_admin_pages_have_no_inline_script(operator, website):
    for path in (
        "/admin/",
        "/admin/console/",
        "/admin/tenants/tenant/",
        f"/admin/tenants/website/{website.pk}/change/",
    ):
        html = operator.get(path).content.decode()
        assert not INLINE_SCRIPT.search(html), path
        assert not EVENT_HANDLER.search(html), path
        # The theme's Alpine.js is the CSP build (no eval); unfold's own build is never loaded.
        assert "alpinejs-csp-3.17.4/alpine-csp" in html and not UNFOLD_ALPINE.search(html), path
