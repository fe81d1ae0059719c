import logging

from celery import shared_task

from . import provider_requests

logger = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=50)
def invalidation_flush_task(self, website_id: str) -> int:
    """Send a website's due invalidations; idempotent (nothing due, nothing sent). Requests that must
    wait (provider capacity, rate limit, a retry) are flushed again when due; past this task's retries
    the beat poll queues them."""
    sent = provider_requests.invalidation_flush(website_id=website_id)
    wait = provider_requests.invalidation_retry_in(website_id=website_id)
    if wait is not None:
        raise self.retry(countdown=min(wait, 900))
    return len(sent)


@shared_task
def invalidation_poll_task() -> dict:
    """Beat: track in-progress invalidations until the provider reports them completed; retry or fail
    those whose worker died while sending them."""
    return provider_requests.invalidation_poll_all()
