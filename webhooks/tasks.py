"""Webhook tasks: they take ids and call services (webhooks/services.py). All run on WEBHOOKS_QUEUE."""

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from . import services


@shared_task(acks_late=True, ignore_result=True)
def events_fan_out_task() -> int:
    return services.events_deliver_pending()


@shared_task(acks_late=True, ignore_result=True)
def event_fan_out_task(event_id: str) -> int:
    return services.event_deliver(event_id=event_id)


@shared_task(acks_late=True, ignore_result=True)
def delivery_attempt_task(delivery_ids: list[str], manual: bool = False) -> dict:
    return services.deliveries_attempt(delivery_ids=delivery_ids, manual=manual)


@shared_task(acks_late=True, ignore_result=True)
def webhooks_sweep() -> dict:
    return services.webhooks_sweep()


@worker_ready.connect
def _sweep_when_a_worker_starts(sender=None, **kwargs):
    """A restarted worker picks up at once what a killed one left (its row locks died with it)."""
    if settings.WEBHOOKS_QUEUE in {queue.name for queue in sender.app.amqp.queues.consume_from.values()}:
        webhooks_sweep.apply_async(queue=settings.WEBHOOKS_QUEUE)
