"""Custom hostnames are served only once `_platform-challenge.<hostname>` holds their token in DNS.

Against a real DNS server on 127.0.0.1 (tests/dnsserver.py, dnslib), which HOSTNAME_DNS_RESOLVERS points
at for the whole run; the origin is the Django app, the CDN the dummy backend (its calls are recorded).
"""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apikeys import services as apikey_services
from cdn import provider_requests
from cdn.backends.dummy import DummyBackend
from cdn.models import Invalidation
from core.exceptions import ApplicationError
from tenants import services, verification
from tenants.dns_challenge import Outcome, challenge_lookup
from tenants.models import Hostname
from tests.helpers import wait_for
from tests.sitebundles import bundle_build, site_v1
from webhooks.models import Event

pytestmark = pytest.mark.django_db


def _origin(host: str, path: str = "/"):
    return Client().get(path, HTTP_HOST=host)


def _deployed_website(tenant, name: str, hostnames: list[str]):
    website = services.website_create(tenant=tenant, name=name, hostnames=hostnames)
    deployment = services.deployment_create(website=website, bundle=bundle_build(site_v1()), run=False)
    assert services.deployment_execute(deployment=deployment).status == "succeeded"
    return website


def _key_client(tenant, scopes: list[str], capture) -> APIClient:
    with capture(execute=True):  # the key is published to the gateway after commit
        _, raw_key = apikey_services.apikey_create(tenant=tenant, name="dns", scopes=scopes)
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {raw_key}")


def _events(type_: str) -> list[dict]:
    return [event.data for event in Event.objects.filter(type=type_).order_by("created_at")]


def test_a_new_hostname_is_served_only_once_its_dns_record_holds_its_token(
    tenant, dns_zone, django_capture_on_commit_callbacks
):
    """The review's reproduction: a tenant claimed a domain it did not own and the origin served it."""
    website = _deployed_website(tenant, "Claimed", ["www.bank.test"])
    assert _origin("www.bank.test").status_code == 400  # as for any name the platform does not serve

    client = _key_client(tenant, ["websites:read", "websites:write"], django_capture_on_commit_callbacks)
    [details] = client.get(f"/api/v1/websites/{website.pk}/").json()["hostname_details"]
    assert details["status"] == "pending" and details["verified_at"] is None
    record = details["record"]
    assert record["type"] == "TXT" and record["name"] == "_platform-challenge.www.bank.test"
    assert len(record["value"]) == 32

    verify = f"/api/v1/websites/{website.pk}/hostnames/www.bank.test/verify/"
    checked = client.post(verify).json()  # nothing published yet
    assert checked["status"] == "pending" and "does not exist" in checked["error"]
    dns_zone.publish(record["name"], "someone-elses-token")
    checked = client.post(verify).json()
    assert checked["status"] == "pending" and "none is this hostname's token" in checked["error"]
    assert _origin("www.bank.test").status_code == 400

    dns_zone.publish(record["name"], "v=spf1 -all", record["value"])
    checked = client.post(verify).json()
    assert checked["status"] == "verified" and checked["error"] == "" and checked["verified_at"]
    page = _origin("www.bank.test")
    assert (page.status_code, page.content) == (200, b"<h1>home v1</h1>")
    assert _events("hostname.verified")[0]["hostname"]["hostname"] == "www.bank.test"
    assert ("_platform-challenge.www.bank.test", "TXT") in dns_zone.queries


def test_the_verify_route_is_the_tenants_own_and_needs_the_write_scope(
    tenant, dns_zone, django_capture_on_commit_callbacks
):
    website = services.website_create(tenant=tenant, name="Mine", hostnames=["www.mine.test"])
    other = services.tenant_create(name="Other", slug="other")
    theirs = services.website_create(tenant=other, name="Theirs", hostnames=["www.theirs.test"])
    reader = _key_client(tenant, ["websites:read"], django_capture_on_commit_callbacks)
    writer = _key_client(tenant, ["websites:write"], django_capture_on_commit_callbacks)

    response = reader.post(f"/api/v1/websites/{website.pk}/hostnames/www.mine.test/verify/")
    assert response.status_code == 403 and response.json()["error"]["code"] == "insufficient_scope"
    for path in (
        f"/api/v1/websites/{theirs.pk}/hostnames/www.theirs.test/verify/",  # another tenant's website
        f"/api/v1/websites/{website.pk}/hostnames/www.theirs.test/verify/",  # another website's hostname
        f"/api/v1/websites/{website.pk}/hostnames/nope.test/verify/",
        f"/api/v1/websites/{website.pk}/hostnames/%00/verify/",
        f"/api/v1/websites/{website.pk}/hostnames/{'a' * 300}/verify/",
    ):
        response = writer.post(path)
        assert response.status_code == 404 and set(response.json()) == {"error"}, (path, response.content)
    # Case and Unicode forms name the same hostname.
    assert writer.post(f"/api/v1/websites/{website.pk}/hostnames/WWW.Mine.Test./verify/").status_code == 200
    services.website_update(website=website, hostnames=["www.mine.test", "bücher.test"])
    response = writer.post(f"/api/v1/websites/{website.pk}/hostnames/bücher.test/verify/")
    assert response.status_code == 200 and response.json()["hostname"] == "xn--bcher-kva.test"
    assert ("_platform-challenge.xn--bcher-kva.test", "TXT") in dns_zone.queries


def test_the_409_for_a_hostname_verified_by_another_tenant_names_nobody(
    tenant, website, django_capture_on_commit_callbacks
):
    """www.a.test is verified for tenant A's `website`; tenant B is told it is taken, not by whom."""
    intruder = services.tenant_create(name="Intruder Ltd", slug="intruder")
    client = _key_client(intruder, ["websites:write"], django_capture_on_commit_callbacks)
    response = client.post("/api/v1/websites/", {"name": "Mine now", "hostnames": ["WWW.A.TEST"]}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"
    body = response.content.decode()
    assert "www.a.test" in response.json()["error"]["fields"]["hostnames"][0]
    for secret in (str(tenant.pk), tenant.slug, tenant.name, str(website.pk), website.name):
        assert secret not in body, f"the 409 names {secret!r}"


def test_a_pending_claim_blocks_nobody_and_only_the_dns_owners_token_verifies(tenant, dns_zone):
    """A tenant cannot squat a name by claiming it: another website may claim it too, and only the claim
    whose token the name's DNS holds is ever verified."""
    squatter = services.website_create(tenant=tenant, name="Squat", hostnames=["shop.owner.test"])
    owner_tenant = services.tenant_create(name="Owner", slug="owner")
    owner = _deployed_website(owner_tenant, "Owner's shop", ["shop.owner.test"])
    squat_claim = squatter.hostnames.get()
    owner_claim = owner.hostnames.get()
    assert squat_claim.verification_token != owner_claim.verification_token

    dns_zone.publish("_platform-challenge.shop.owner.test", owner_claim.verification_token)
    assert verification.hostname_verify(hostname=squat_claim, requested=True).status == "pending"
    assert verification.hostname_verify(hostname=owner_claim, requested=True).status == "verified"
    assert _origin("shop.owner.test").content == b"<h1>home v1</h1>"

    # Even with its own token published beside the owner's, the squatter never takes the name.
    dns_zone.publish(
        "_platform-challenge.shop.owner.test", owner_claim.verification_token, squat_claim.verification_token
    )
    refused = verification.hostname_verify(hostname=squat_claim, requested=True)
    assert refused.status == "failed" and "already in use" in refused.last_error
    assert Hostname.objects.get(pk=owner_claim.pk).status == "verified"


def test_pending_checks_back_off_then_give_up_and_a_recheck_starts_over(tenant, dns_zone, settings):
    settings.HOSTNAME_VERIFY_BACKOFF_SECONDS = 60
    settings.HOSTNAME_VERIFY_BACKOFF_MAX_SECONDS = 600
    settings.HOSTNAME_VERIFY_GIVE_UP_HOURS = 24
    website = services.website_create(tenant=tenant, name="Slow DNS", hostnames=["slow.test"])
    hostname = website.hostnames.get()
    delays = []
    for _ in range(6):
        before = timezone.now()
        hostname = verification.hostname_verify(hostname=hostname)
        delays.append(round((hostname.next_check_at - before).total_seconds() / 60))
    assert delays == [1, 2, 4, 8, 10, 10]  # minutes: doubling, capped
    assert hostname.status == "pending" and hostname.check_failures == 6

    # A day of failures: given up, no more automatic checks, and the tenant is told.
    Hostname.objects.filter(pk=hostname.pk).update(verification_started_at=timezone.now() - timedelta(hours=25))
    hostname = verification.hostname_verify(hostname=Hostname.objects.get(pk=hostname.pk))
    assert (hostname.status, hostname.next_check_at) == ("failed", None)
    assert _events("hostname.verification_failed")[0]["hostname"]["status"] == "failed"
    assert verification.hostname_checks_enqueue() == 0

    # Asking again starts a new round: one immediate lookup, then automatic checks from the start.
    hostname = verification.hostname_verify(hostname=hostname, requested=True)
    assert hostname.status == "pending" and hostname.check_failures == 1
    assert hostname.next_check_at - hostname.verification_started_at == timedelta(minutes=1)
    dns_zone.publish(hostname.challenge_name, hostname.verification_token)
    assert verification.hostname_verify(hostname=hostname).status == "verified"


def test_a_verified_hostname_whose_record_disappears_lapses_after_the_grace_and_its_cache_is_purged(
    tenant, dns_zone, settings, django_capture_on_commit_callbacks
):
    settings.HOSTNAME_VERIFY_GRACE_HOURS = 72
    website = _deployed_website(tenant, "Moving", ["www.moving.test"])
    hostname = website.hostnames.get()
    dns_zone.publish(hostname.challenge_name, hostname.verification_token)
    hostname = verification.hostname_verify(hostname=hostname)
    assert hostname.status == "verified"
    assert hostname.next_check_at - hostname.checked_at == timedelta(hours=24)  # the periodic re-check

    # Our resolver failing (SERVFAIL, then no answer at all) is not evidence: the site stays served.
    settings.HOSTNAME_DNS_TIMEOUT = 1
    for failure, detail in ((dns_zone.failing, "SERVFAIL"), (dns_zone.silent, "timed out")):
        failure.add(hostname.challenge_name)
        hostname = verification.hostname_verify(hostname=hostname)
        assert hostname.status == "verified" and hostname.record_missing_since is None
        assert detail in hostname.last_error
        failure.clear()

    dns_zone.withdraw(hostname.challenge_name)
    hostname = verification.hostname_verify(hostname=hostname)
    assert hostname.status == "verified" and hostname.record_missing_since == hostname.checked_at
    assert hostname.next_check_at - hostname.checked_at == timedelta(hours=1)  # watched closely meanwhile
    assert _origin("www.moving.test").status_code == 200  # within the grace
    [warning] = _events("hostname.record_missing")
    assert warning["hostname"]["record"]["name"] == "_platform-challenge.www.moving.test"

    Hostname.objects.filter(pk=hostname.pk).update(record_missing_since=timezone.now() - timedelta(hours=73))
    hostname = verification.hostname_verify(hostname=Hostname.objects.get(pk=hostname.pk))
    assert hostname.status == "pending" and hostname.verified_at is None
    assert _origin("www.moving.test").status_code == 400
    assert _events("hostname.unverified")
    # The CDN is told to drop everything it holds under the lapsed name, although the website no longer
    # lists it among the names it is served on.
    purge = Invalidation.objects.get(website=website, reason__contains="no longer verified")
    assert purge.paths == ["/*"] and purge.hostnames == ["www.moving.test"]
    DummyBackend.calls.clear()
    provider_requests.invalidation_flush(website_id=website.pk)
    [(website_id, hosts, paths)] = DummyBackend.calls
    assert hosts == ("www.moving.test",) and paths == ["/*"]


def test_dns_answers_are_read_as_dns_defines_them(dns_zone, settings):
    token = "f" * 32
    dns_zone.publish("_platform-challenge.split.test", "x" * 300 + token)  # > 255 bytes: several strings
    assert challenge_lookup("split.test", "x" * 300 + token).outcome is Outcome.FOUND
    dns_zone.publish("_platform-challenge.many.test", *[f"value-{i}" for i in range(10)], token)
    assert challenge_lookup("many.test", token).outcome is Outcome.FOUND
    assert challenge_lookup("many.test", token[:-1]).outcome is Outcome.MISSING  # exact match only
    assert challenge_lookup("absent.test", token).outcome is Outcome.MISSING
    settings.HOSTNAME_DNS_RESOLVERS = ["127.0.0.1:1"]  # nobody listens: unknown, never "missing"
    settings.HOSTNAME_DNS_TIMEOUT = 1
    assert challenge_lookup("many.test", token).outcome is Outcome.UNKNOWN


def test_platform_names_cannot_be_claimed(tenant, settings):
    settings.PLATFORM_HOST = "api.platform.test"
    settings.SITES_PREVIEW_DOMAIN = "sites.preview.test"
    settings.SITES_RESERVED_DOMAINS = ["corp.test"]
    settings.ALLOWED_HOSTS = ["api.platform.test", ".internal.test"]
    for name in ("api.platform.test", "x.api.platform.test", "sites.preview.test", "abc.sites.preview.test",
                 "corp.test", "mail.corp.test", "node.internal.test"):  # fmt: skip
        with pytest.raises(ApplicationError) as error:
            services.website_create(tenant=tenant, name=name, hostnames=[name.upper()])
        assert error.value.status_code == 400, name
        [message] = error.value.fields["hostnames"]
        assert "platform" in message and "cannot be used by a website" in message, message
    assert services.website_create(tenant=tenant, name="fine", hostnames=["platform.test", "notcorp.test"])
    # A name whose challenge record could not exist in DNS (over 253 characters) could never be verified.
    longest = ".".join(["a" * 62] * 3) + ".test"  # 195 characters: fits
    assert services.website_create(tenant=tenant, name="long", hostnames=[longest])
    with pytest.raises(ApplicationError) as error:
        services.website_create(
            tenant=tenant, name="too long", hostnames=[".".join(["a" * 62] * 3) + "." + "b" * 50 + ".test"]
        )
    assert "too long to be verified" in error.value.fields["hostnames"][0]


@pytest.mark.django_db(transaction=True)
def test_the_beat_queues_due_checks_and_a_celery_worker_verifies(tenant, dns_zone, celery_worker):
    """The automatic path: the beat task claims what is due and a real worker (pointed at the same DNS
    server by HOSTNAME_DNS_RESOLVERS) runs the check."""
    from tenants.tasks import hostnames_verify_due_task

    website = _deployed_website(tenant, "Automatic", ["auto.test", "never.test"])
    auto = website.hostnames.get(hostname="auto.test")
    dns_zone.publish(auto.challenge_name, auto.verification_token)
    Hostname.objects.filter(website=website).update(next_check_at=timezone.now())
    assert hostnames_verify_due_task() == 2
    # Claimed: a second beat run before the worker reports queues nothing twice.
    assert hostnames_verify_due_task() == 0
    wait_for(lambda: Hostname.objects.get(pk=auto.pk).status == "verified", timeout=30)
    never = wait_for(lambda: (h := website.hostnames.get(hostname="never.test")).checked_at and h, timeout=30)
    assert never.status == "pending" and never.next_check_at > timezone.now() and never.check_failures == 1
    assert _origin("auto.test").status_code == 200 and _origin("never.test").status_code == 400


def test_the_admin_check_action_verifies_through_the_service_and_is_audited(tenant, dns_zone, django_user_model):
    from django.contrib.auth.models import Group

    from console.models import AuditLogEntry
    from console.roles import SUPPORT

    website = services.website_create(tenant=tenant, name="Admin checked", hostnames=["adm.test"])
    hostname = website.hostnames.get()
    dns_zone.publish(hostname.challenge_name, hostname.verification_token)
    user = django_user_model.objects.create_user("support-1", password="pw-support-1", is_staff=True)
    user.groups.add(Group.objects.get(name=SUPPORT))
    client = Client()
    client.force_login(user)
    page = client.get(f"/admin/tenants/hostname/{hostname.pk}/change/")
    assert page.status_code == 200 and hostname.verification_token in page.content.decode()
    data = {"action": "check_now", "_selected_action": [hostname.pk], "reason": "tenant says it is set up"}
    assert client.post("/admin/tenants/hostname/", data).status_code == 200  # the confirmation page
    response = client.post("/admin/tenants/hostname/", {**data, "apply": "1"})
    assert response.status_code == 302
    assert Hostname.objects.get(pk=hostname.pk).status == "verified"
    entry = AuditLogEntry.objects.get(action="hostname.verify")
    assert entry.actor_username == "support-1" and entry.reason == "tenant says it is set up"
    assert entry.detail["status"] == "verified"


def test_existing_hostnames_are_grandfathered_by_the_migration():
    """Hostnames served before verification existed stay served (verified, each with its own token) and
    are due for a check at once; see the migration's docstring for what happens without a record."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("tenants", "0002_deployment_bundle_and_website_cdn")], [("tenants", "0003_hostname_verification")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps
        tenant = old.get_model("tenants", "Tenant").objects.create(name="Old", slug="old-one")
        site = old.get_model("tenants", "Website").objects.create(tenant=tenant, name="Old site")
        for name in ("old.test", "www.old.test"):
            old.get_model("tenants", "Hostname").objects.create(website=site, hostname=name)
    finally:
        with connection.cursor() as cursor:  # the rows' deferred FK checks must not block ALTER TABLE
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert after[0] in MigrationExecutor(connection).loader.applied_migrations
    rows = list(Hostname.objects.filter(website__tenant__slug="old-one"))
    assert len(rows) == 2 and {row.status for row in rows} == {"verified"} and all(row.verified_at for row in rows)
    assert len({row.verification_token for row in rows}) == 2
    assert all(row.next_check_at <= timezone.now() for row in rows)
    assert _origin("www.old.test").status_code == 404  # served by Host (no deployment yet), not refused
