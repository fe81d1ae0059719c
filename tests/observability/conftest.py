import pytest

METRICS_TOKEN = "test-metrics-token"


@pytest.fixture(autouse=True)
def metrics_token(settings):
    """The suite runs in real mode, where /metrics needs the bearer token."""
    settings.METRICS_TOKEN = METRICS_TOKEN
    return METRICS_TOKEN
