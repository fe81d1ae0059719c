"""A hostile tenant's page in the browser of a logged-in operator, and the admin under its CSP.

The review's reproduction: a support user logged in to the console opened tenant A's page, whose script
called the API with the operator's session and suspended another tenant. Tenant pages now live on their
own hosts (<website id>.SITES_PREVIEW_DOMAIN, a separate site from the platform's 127.0.0.1), so the
browser itself refuses: no cookies of the platform there, no CORS, no CSRF token, SameSite cookies.
"""

import json

import pytest

from console.models import AuditLogEntry
from console.roles import PLATFORM_ADMINS
from tenants import services as tenant_services
from tenants.bundles import bundle_build
from tenants.hostnames import preview_host
from tenants.models import Tenant
from tests.helpers import hostnames_verified, operator_create
from webhooks.models import Event

from .conftest import every_admin_page, login

pytestmark = pytest.mark.django_db(transaction=True)

ATTACK_PAGE = """<!doctype html>
<html><head><title>Tenant A</title></head><body>
<h1>Totally harmless tenant page</h1>
<pre id="result">running</pre>
<form id="admin-form" method="post" action="PLATFORM/admin/tenants/tenant/">
  <input name="action" value="suspend_selected"><input name="_selected_action" value="VICTIM">
  <input name="apply" value="1"><input name="reason" value="pwned from a tenant page">
</form>
<script>
(async () => {
  const victim = "VICTIM", platform = "PLATFORM";
  const results = {origin: location.origin, cookies: document.cookie};
  const csrf = (document.cookie.match(/csrftoken=([^;]+)/) || [])[1] || "";
  async function attempt(name, url) {
    try {
      const response = await fetch(url, {
        method: "POST", credentials: "include",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
        body: JSON.stringify({reason: "pwned from a tenant page"}),
      });
      results[name] = response.status;
    } catch (error) {
      results[name] = "refused: " + error.name;
    }
  }
  await attempt("relative", `/api/v1/tenants/${victim}/suspend/`);
  await attempt("absolute", `${platform}/api/v1/tenants/${victim}/suspend/`);
  try {  // a "simple" request goes out without a preflight; the browser keeps the answer opaque
    await fetch(`${platform}/api/v1/tenants/${victim}/suspend/`,
                {method: "POST", mode: "no-cors", credentials: "include", body: "reason=pwned"});
    results.simple = "sent";
  } catch (error) {
    results.simple = "refused: " + error.name;
  }
  document.getElementById("result").textContent = JSON.stringify(results);
  document.body.dataset.done = "1";
})();
</script>
</body></html>
"""


def _platform_admin(django_user_model) -> tuple[str, str]:
    operator_create("pat-boundary", "pat-pw-7711", PLATFORM_ADMINS)
    return "pat-boundary", "pat-pw-7711"


def test_a_tenant_page_cannot_act_with_the_operators_session(page, screenshot, console_server, django_user_model):
    victim = tenant_services.tenant_create(name="Victim", slug="victim", tier="enterprise")
    attacker = tenant_services.tenant_create(name="Attacker", slug="attacker")
    website = tenant_services.website_create(tenant=attacker, name="Bait", hostnames=["bait.attacker.test"])
    hostnames_verified("bait.attacker.test")
    html = ATTACK_PAGE.replace("VICTIM", str(victim.pk)).replace("PLATFORM", console_server)
    deployment = tenant_services.deployment_create(
        website=website, bundle=bundle_build({"index.html": html}), run=False
    )
    assert tenant_services.deployment_execute(deployment=deployment).status == "succeeded"

    login(page, *_platform_admin(django_user_model))
    session = {c["name"]: c for c in page.context.cookies()}
    assert {"sessionid", "csrftoken"} <= set(session)
    assert all(not c["domain"].startswith(".") for c in session.values())  # host-only: 127.0.0.1 alone
    network = _NetworkLog(page)

    # The operator follows a link to the site under the platform's host: it is sent to the preview host.
    preview_origin = f"http://{preview_host(website.pk)}:{console_server.rsplit(':', 1)[1]}"
    for entry in (
        f"{console_server}/sites/{website.pk}/",
        "http://bait.attacker.test:" + console_server.rsplit(":", 1)[1],
    ):
        page.goto(entry)
        page.wait_for_selector("body[data-done]")
        results = json.loads(page.inner_text("#result"))
        screenshot("20-tenant-page-attack")
        assert results["origin"] in (preview_origin, entry.rstrip("/")), results
        assert results["cookies"] == ""  # none of the platform's cookies exist on the tenant's origin
        assert results["relative"] == 405  # the tenant's own host: no API there
        assert results["absolute"] == "refused: TypeError"  # cross-origin, no CORS: the browser refuses
        assert results["simple"] == "refused: TypeError", results
        # What Chromium reports for the requests to the platform: each refused, none with the session.
        sent = network.to(console_server)
        preflighted, preflight, simple = (
            [e for e in sent if e["method"] == "POST" and "status" not in e],
            [e for e in sent if e["method"] == "OPTIONS"],
            [e for e in sent if e["method"] == "POST" and "status" in e],
        )
        assert [e["blocked"] for e in preflighted] == ["PreflightMissingAllowOriginHeader"], sent
        assert [e["status"] for e in preflight] == [401] and not preflight[0].get("cookies_sent"), sent
        [simple] = simple  # the request went out, without the operator's cookies, and was refused
        assert (simple["status"], simple["blocked"], simple.get("cookies_sent")) == (401, "corp-not-same-origin", None)
        withheld = {name: reasons for name, *reasons in simple["cookies_withheld"]}
        assert set(withheld) == {"sessionid", "csrftoken"}
        assert all(any("SameSiteLax" in reason for reason in reasons) for reasons in withheld.values()), withheld
        network.clear()

    # A form POST to the admin, as a top-level navigation: refused by CSRF, and visibly so.
    with page.expect_navigation() as navigation:
        page.evaluate("document.getElementById('admin-form').submit()")
    refused = navigation.value
    assert refused.status == 403 and "CSRF" in page.content()
    screenshot("21-admin-post-refused")

    victim.refresh_from_db()
    assert victim.status == Tenant.Status.ACTIVE
    assert not AuditLogEntry.objects.filter(action="tenant.suspend").exists()
    assert not Event.objects.filter(type="tenant.suspended").exists()
    # Control: the operator's session was valid all along, on the platform's own host.
    page.goto(f"{console_server}/admin/")
    # Still logged in: the admin's home, with the operator's name in the sidebar's account block.
    assert "/login/" not in page.url and "pat-boundary" in page.inner_text("body").lower()


def test_every_admin_page_runs_under_the_csp_without_a_violation(
    page, screenshot, console_server, django_user_model, tenant_with_everything_e2e
):
    """Each page of the admin, the console and the API docs, in Chromium with the platform's CSP: no
    violation reported, and the scripts that make the pages work (actions, charts, Swagger UI) run."""
    from django.test import RequestFactory
    from django.urls import reverse

    root = django_user_model.objects.create_superuser("root-csp", "root@example.com", "root-csp-pw-1")
    request = RequestFactory().get("/admin/")
    request.user = root
    login(page, "root-csp", "root-csp-pw-1")
    page.add_init_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation', e => window.__violations.push("
        "`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));"
    )
    console_errors = []
    page.on("console", lambda m: console_errors.append(m.text) if "Content Security Policy" in m.text else None)

    urls = ["/admin/", "/admin/console/", "/admin/replicas/", "/admin/password_change/", "/api/docs/"]
    urls += every_admin_page(request)
    for extra in ("admin:apikeys_usage_chart",):
        urls.append(reverse(extra))
    checked = []
    for url in urls:
        response = page.goto(console_server + url)
        assert response.status == 200, (url, response.status)
        assert "script-src 'self'" in response.headers["content-security-policy"], url
        page.wait_for_load_state("load")
        if url == "/api/docs/":
            page.wait_for_selector(".swagger-ui .info .title")  # Swagger UI ran from its separate script
        violations = page.evaluate("window.__violations")
        assert not violations and not console_errors, (url, violations, console_errors)
        checked.append(url)
    assert len(checked) >= 30, checked

    # The admin's own scripts work: select all rows of a change list, then the confirmation page.
    page.goto(console_server + "/admin/tenants/tenant/")
    page.check("#action-toggle")
    assert page.locator("input.action-select:checked").count() == Tenant.objects.count()
    page.select_option("select[name=action]", "suspend_selected")
    page.click("button[name=index]")
    page.wait_for_selector(".console-confirm")
    page.click("a.cancel-link")  # history.back() from admin/js/cancel.js, not an inline handler
    page.wait_for_url("**/admin/tenants/tenant/")
    assert not page.evaluate("window.__violations") and not console_errors
    screenshot("22-admin-under-csp")

    # Control: the policy is enforced and a violation would have been seen. Injected inline script never runs.
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__ran = 1';"
        " document.body.appendChild(s); }"
    )
    page.wait_for_function("() => window.__violations.length > 0")
    assert page.evaluate("window.__ran") is None
    assert page.evaluate("window.__violations")[0].startswith("script-src-elem inline")


class _NetworkLog:
    """What Chromium itself reports about each request (DevTools protocol): the status the server answered,
    even when the page may not see it, and why the browser refused the request or its answer."""

    def __init__(self, page):
        self.requests: dict[str, dict] = {}
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.requestWillBeSentExtraInfo", self._cookies)
        cdp.on("Network.responseReceivedExtraInfo", self._answered)
        cdp.on("Network.loadingFailed", self._failed)

    def _entry(self, request_id: str) -> dict:
        return self.requests.setdefault(request_id, {})

    def _sent(self, event):
        request = event["request"]
        self._entry(event["requestId"]).update(method=request["method"], url=request["url"], type=event.get("type"))

    def _cookies(self, event):
        entry = self._entry(event["requestId"])
        for associated in event.get("associatedCookies", []):
            name, reasons = associated["cookie"]["name"], associated.get("blockedReasons") or []
            entry.setdefault("cookies_withheld" if reasons else "cookies_sent", []).append((name, *reasons))

    def _answered(self, event):
        self._entry(event["requestId"])["status"] = event["statusCode"]

    def _failed(self, event):
        entry = self._entry(event["requestId"])
        entry["blocked"] = event.get("blockedReason") or (event.get("corsErrorStatus") or {}).get("corsError")
        entry["error"] = event.get("errorText")

    def to(self, origin: str) -> list[dict]:
        return [entry for entry in self.requests.values() if entry.get("url", "").startswith(origin)]

    def clear(self) -> None:
        self.requests.clear()


@pytest.fixture
def tenant_with_everything_e2e(settings):
    """One of every object (website, deployment, key, endpoint, delivery, invalidation), so each admin
    change page has an object to show."""
    from tests.hardening.conftest import tenant_with_everything

    settings.WEBHOOKS_ALLOW_HTTP = True
    settings.WEBHOOKS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    return tenant_with_everything("csp-tenant")
