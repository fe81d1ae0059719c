import pytest


@pytest.fixture
def s3_client():
    import boto3
    from django.conf import settings

    return boto3.client("s3", endpoint_url=settings.S3_ENDPOINT_URL, region_name=settings.AWS_DEFAULT_REGION)


@pytest.fixture(autouse=True)
def _dummy_cdn_calls():
    from cdn.backends.dummy import DummyBackend

    DummyBackend.calls.clear()
    yield
    DummyBackend.calls.clear()
