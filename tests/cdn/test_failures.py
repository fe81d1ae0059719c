"""A purge that cannot be sent never stays in progress: bounded attempts, then `failed` with the error,
visible in the API, the admin and the `cdn.invalidation.failed` webhook event; a worker that dies while
sending is noticed by the lease and the beat poll."""

from datetime import timedelta

import pytest
from django.utils import timezone

from cdn import provider_requests, services
from cdn.backends.base import CdnError
from cdn.backends.dummy import DummyBackend
from cdn.models import Invalidation, ProviderRequest
from webhooks.models import Event

pytestmark = pytest.mark.django_db


class FlakyBackend(DummyBackend):
    """A provider that fails every request (a bug in it, too: not only CdnError)."""

    error: Exception = CdnError("provider down")

    def invalidate(self, site, paths):
        raise FlakyBackend.error


@pytest.fixture
def flaky_website(website, settings):
    from cdn.backends import cdn_backends

    settings.CDN_BACKENDS = {**settings.CDN_BACKENDS, "flaky": {"BACKEND": f"{__name__}.FlakyBackend"}}
    settings.CDN_INVALIDATION_MAX_ATTEMPTS = 3
    cdn_backends.reset()
    website.cdn_backend = "flaky"
    website.save(update_fields=["cdn_backend"])
    yield website
    cdn_backends.reset()


def _due_now():
    ProviderRequest.objects.update(not_before=None)


@pytest.mark.parametrize("error", [CdnError("provider down"), UnicodeEncodeError("latin-1", "é", 0, 1, "bad")])
def test_a_failing_flush_ends_failed_after_bounded_attempts(flaky_website, staff_client, error):
    FlakyBackend.error = error
    asked = services.invalidation_request(website=flaky_website, paths=["/café/", "/a.html"])
    for attempt in (1, 2):
        [request] = provider_requests.invalidation_flush(website_id=flaky_website.pk)
        assert (request.status, request.attempts) == (ProviderRequest.Status.PENDING, attempt)
        assert request.not_before > timezone.now()  # retried later, with a growing delay
        _due_now()
    [request] = provider_requests.invalidation_flush(website_id=flaky_website.pk)
    assert request.status == ProviderRequest.Status.FAILED and "gave up after 3 attempts" in request.error
    assert provider_requests.invalidation_retry_in(website_id=flaky_website.pk) is None  # nothing left to retry

    body = staff_client.get(f"/api/v1/websites/{flaky_website.pk}/invalidations/{asked.pk}/").json()
    assert body["status"] == "failed" and "gave up after 3 attempts" in body["error"]
    assert body["requests"][0]["attempts"] == 3 and body["paths"] == ["/caf%C3%A9/", "/a.html"]
    [event] = Event.objects.filter(type="cdn.invalidation.failed")
    assert event.data["invalidation"]["id"] == str(asked.pk) and event.data["invalidation"]["error"]
    assert not Event.objects.filter(type="cdn.invalidation.completed").exists()


def test_a_provider_refusal_fails_at_once(flaky_website):
    from cdn.backends.base import CdnRejected

    FlakyBackend.error = CdnRejected("InvalidArgument: bad path")
    services.invalidation_request(website=flaky_website, paths=["/a.html"])
    [request] = provider_requests.invalidation_flush(website_id=flaky_website.pk)
    assert (request.status, request.attempts) == (ProviderRequest.Status.FAILED, 1)
    assert Invalidation.objects.get().status == Invalidation.Status.FAILED


def test_a_worker_that_died_while_sending_is_retried_then_failed(website, settings):
    settings.CDN_INVALIDATION_MAX_ATTEMPTS = 2
    asked = services.invalidation_request(website=website, paths=["/a.html"])
    [request] = provider_requests.invalidations_plan(website_id=website.pk)
    expired = timezone.now() - timedelta(seconds=1)
    # What a worker SIGKILLed mid-request leaves: claimed, never answered, its lease running out.
    ProviderRequest.objects.filter(pk=request.pk).update(
        status="in_progress", attempts=1, lease_owner="dead", lease_expires_at=expired
    )
    assert provider_requests.invalidation_poll_all()["expired"] == 1
    request.refresh_from_db()
    assert request.status == "pending" and "stopped" in request.error and not request.lease_owner
    assert "the worker sending it (dead) stopped" in request.error  # the process, from its lease owner
    ProviderRequest.objects.filter(pk=request.pk).update(
        status="in_progress", attempts=2, lease_owner="dead again", lease_expires_at=expired
    )
    provider_requests.invalidation_poll_all()
    request.refresh_from_db()
    assert request.status == "failed" and "gave up after 2 attempts" in request.error
    asked.refresh_from_db()
    assert asked.status == "failed" and Event.objects.filter(type="cdn.invalidation.failed").count() == 1
    # A live lease is left alone.
    live = ProviderRequest.objects.create(website=website, backend="default", paths=["/b"], status="in_progress",
                                          lease_owner="alive", lease_expires_at=timezone.now() + timedelta(minutes=1))  # fmt: skip
    provider_requests.invalidation_poll_all()
    assert ProviderRequest.objects.get(pk=live.pk).status == "in_progress"


def test_coalescing_never_deletes_a_record_a_client_knows(website):
    ids = [services.invalidation_request(website=website, paths=[f"/{i}.html"]).pk for i in range(5)]
    requests = provider_requests.invalidation_flush(website_id=website.pk)
    assert len(requests) == 1 and sorted(requests[0].paths) == sorted(f"/{i}.html" for i in range(5))
    assert Invalidation.objects.filter(pk__in=ids, status="completed").count() == 5


def test_failed_invalidations_show_in_the_admin(flaky_website, admin_client_logged_in, settings):
    client = admin_client_logged_in
    FlakyBackend.error = CdnError("provider down")
    settings.CDN_INVALIDATION_MAX_ATTEMPTS = 1
    asked = services.invalidation_request(website=flaky_website, paths=["/a.html"])
    [request] = provider_requests.invalidation_flush(website_id=flaky_website.pk)
    page = client.get("/admin/cdn/invalidation/?status__exact=failed")
    assert page.status_code == 200 and b"provider down" in page.content
    page = client.get(f"/admin/cdn/invalidation/{asked.pk}/change/")
    assert page.status_code == 200 and b"gave up after 1 attempts" in page.content
    page = client.get(f"/admin/cdn/providerrequest/{request.pk}/change/")
    assert page.status_code == 200 and b"provider down" in page.content
