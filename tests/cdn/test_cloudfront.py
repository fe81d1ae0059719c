"""The CloudFront backend against moto's server (moto completes invalidations at once)."""

import uuid

import boto3
import pytest

from cdn import provider_requests, services
from cdn.models import Invalidation, ProviderRequest
from tenants import services as tenant_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def cloudfront(moto_endpoint):
    return boto3.client("cloudfront", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def distribution_id(cloudfront):
    reference = uuid.uuid4().hex
    config = {
        "CallerReference": reference,
        "Comment": "test",
        "Enabled": True,
        "Origins": {
            "Quantity": 1,
            "Items": [{"Id": "origin", "DomainName": "origin.example.com",
                       "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only"}}],
        },
        "DefaultCacheBehavior": {
            "TargetOriginId": "origin", "ViewerProtocolPolicy": "redirect-to-https",
            "MinTTL": 0, "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
        },
    }  # fmt: skip
    return cloudfront.create_distribution(DistributionConfig=config)["Distribution"]["Id"]


@pytest.fixture
def cf_website(tenant, settings, moto_endpoint, distribution_id):
    settings.CDN_BACKENDS = {
        "default": {"BACKEND": "cdn.backends.dummy.DummyBackend", "OPTIONS": {}},
        "cloudfront": {
            "BACKEND": "cdn.backends.cloudfront.CloudFrontBackend",
            "OPTIONS": {"ENDPOINT_URL": moto_endpoint, "BACKOFF_SECONDS": 0.01},
        },
    }
    website = tenant_services.website_create(tenant=tenant, name="CF", hostnames=["www.cf.test"])
    website.cdn_backend, website.cdn_config = "cloudfront", {"distribution_id": distribution_id}
    website.save(update_fields=["cdn_backend", "cdn_config"])
    return website


def _requests(cloudfront, distribution_id) -> list[dict]:
    listing = cloudfront.list_invalidations(DistributionId=distribution_id)["InvalidationList"]
    return [
        cloudfront.get_invalidation(DistributionId=distribution_id, Id=item["Id"])["Invalidation"]
        for item in listing.get("Items", [])
    ]


def test_invalidation_is_created_and_tracked_until_completed(cf_website, cloudfront, distribution_id):
    first = services.invalidation_request(website=cf_website, paths=["/", "/about/"], reason="test")
    second = services.invalidation_request(website=cf_website, paths=["/about/", "/blog/*"])  # coalesces
    [row] = provider_requests.invalidation_flush(website_id=cf_website.pk)
    # Both records are kept (their ids were given out) and carried by the one provider request.
    for invalidation in (first, second):
        invalidation.refresh_from_db()
        assert invalidation.status == Invalidation.Status.COMPLETED
        assert list(invalidation.requests.all()) == [row]
    assert row.target == distribution_id and row.provider_id
    # moto says COMPLETED, AWS says Completed: either is completed.
    assert row.status == Invalidation.Status.COMPLETED and row.completed_at >= row.submitted_at
    [sent] = _requests(cloudfront, distribution_id)
    assert sent["Id"] == row.provider_id
    assert sorted(sent["InvalidationBatch"]["Paths"]["Items"]) == ["/", "/about/", "/blog/*"]


def test_polling_marks_in_progress_records_completed(cf_website, distribution_id):
    services.invalidation_request(website=cf_website, paths=["/x.html"])
    [row] = provider_requests.invalidation_flush(website_id=cf_website.pk)
    ProviderRequest.objects.filter(pk=row.pk).update(status=Invalidation.Status.IN_PROGRESS, completed_at=None)
    counts = provider_requests.invalidation_poll_all()
    assert counts["completed"] == 1
    assert ProviderRequest.objects.get(pk=row.pk).status == Invalidation.Status.COMPLETED


def test_ten_thousand_changed_paths_become_at_most_four_requests(cf_website, cloudfront, distribution_id, settings):
    paths = [f"/docs/section-{i % 40}/page-{i}.html" for i in range(10_000)]
    services.invalidation_request(website=cf_website, paths=paths)
    rows = provider_requests.invalidation_flush(website_id=cf_website.pk)
    sent = _requests(cloudfront, distribution_id)
    assert 1 <= len(sent) <= 4 and len(rows) == len(sent)
    items = [path for request in sent for path in request["InvalidationBatch"]["Paths"]["Items"]]
    assert all(path.startswith("/docs/") for path in items)
    assert sum(path.endswith("*") for path in items) <= 15


def test_without_wildcards_ten_thousand_paths_are_chunked_within_the_in_progress_limit(
    cf_website, cloudfront, distribution_id, settings
):
    settings.CDN_WILDCARD_THRESHOLD = None
    paths = [f"/p/{i}.html" for i in range(10_000)]
    services.invalidation_request(website=cf_website, paths=paths)
    rows = provider_requests.invalidation_flush(website_id=cf_website.pk)
    sent = _requests(cloudfront, distribution_id)
    assert len(sent) == 4 and sorted(len(r["InvalidationBatch"]["Paths"]["Items"]) for r in sent) == [
        1000, 3000, 3000, 3000,
    ]  # fmt: skip
    assert {row.status for row in rows} == {Invalidation.Status.COMPLETED}
    assert sorted(p for r in sent for p in r["InvalidationBatch"]["Paths"]["Items"]) == sorted(paths)


def test_a_full_in_progress_budget_defers_the_request(cf_website, distribution_id):
    # Another request of ours is still in progress at the provider with 2,999 paths.
    ProviderRequest.objects.create(
        website=cf_website, backend="cloudfront", target=distribution_id, provider_id="UNKNOWN-AT-PROVIDER",
        paths=[f"/old/{i}" for i in range(2_999)], status=Invalidation.Status.IN_PROGRESS,
    )  # fmt: skip
    asked = services.invalidation_request(website=cf_website, paths=["/a.html", "/b.html"])
    [waiting] = provider_requests.invalidation_flush(website_id=cf_website.pk)
    assert waiting.status == Invalidation.Status.PENDING and not waiting.provider_id and waiting.not_before
    assert "in-progress limit" in waiting.error and waiting.attempts == 0
    assert 25 <= provider_requests.invalidation_retry_in(website_id=cf_website.pk) <= 30  # the task flushes again then
    asked.refresh_from_db()
    assert asked.status == Invalidation.Status.PENDING


def test_unknown_distribution_fails_the_record_with_the_provider_error(cf_website):
    cf_website.cdn_config = {"distribution_id": "EDOESNOTEXIST"}
    cf_website.save(update_fields=["cdn_config"])
    services.invalidation_request(website=cf_website, paths=["/"])
    [row] = provider_requests.invalidation_flush(website_id=cf_website.pk)
    assert row.status == Invalidation.Status.FAILED and "NoSuchDistribution" in row.error


def test_a_website_without_distribution_fails_visibly_instead_of_retrying(cf_website):
    cf_website.cdn_config = {}
    cf_website.save(update_fields=["cdn_config"])
    services.invalidation_request(website=cf_website, paths=["/"])
    assert provider_requests.invalidation_flush(website_id=cf_website.pk) == []
    row = Invalidation.objects.get(website=cf_website)
    assert row.status == Invalidation.Status.FAILED and "no CloudFront distribution_id" in row.error
