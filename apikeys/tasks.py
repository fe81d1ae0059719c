from celery import shared_task

from . import services


@shared_task(acks_late=True)
def usage_rollup():
    """Beat, every minute: usage counters and last-used stamps from Redis into PostgreSQL."""
    return services.usage_rollup()
