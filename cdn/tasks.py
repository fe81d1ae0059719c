import logging

from celery import shared_task

from . import services
from .backends.base import CdnThrottled

logger = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=20)
def invalidation_flush(self, website_id: str) -> int:
    """Send a website's pending invalidations; idempotent (nothing pending, nothing sent)."""
    try:
        return len(services.invalidation_flush(website_id=website_id))
    except CdnThrottled as exc:
        # Provider capacity or rate limit: try again later, growing the wait each time.
        raise self.retry(countdown=min(exc.retry_after * (1 + self.request.retries), 900)) from exc


@shared_task
def invalidation_poll() -> dict:
    """Beat: track in-progress invalidations until the provider reports them completed."""
    return services.invalidation_poll_all()
