"""Webhook tasks: they take ids and call the services (webhooks/delivery.py, webhooks/recovery.py). All
run on WEBHOOKS_QUEUE; the lanes are loops inside the tasks (docs/webhooks.md, "Lanes")."""

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from . import delivery, recovery


@shared_task(acks_late=True, ignore_result=True)
def events_fan_out_task() -> int:
    return delivery.events_deliver_pending()


@shared_task(acks_late=True, ignore_result=True)
def event_fan_out_task(event_id: str) -> int:
    return delivery.event_deliver(event_id=event_id)


@shared_task(acks_late=True, ignore_result=True)
def deliveries_attempt_task(delivery_ids: list[str], manual: bool = False) -> dict:
    return delivery.deliveries_attempt(delivery_ids=delivery_ids, manual=manual)


@shared_task(acks_late=True, ignore_result=True)
def deliveries_pump_task() -> int:
    return delivery.deliveries_pump()


@shared_task(acks_late=True, ignore_result=True)
def webhooks_sweep_task() -> dict:
    return recovery.webhooks_sweep()


@worker_ready.connect
def _sweep_when_a_worker_starts(sender=None, **kwargs):
    """A restarted worker picks up at once what a killed one left (its row locks died with it)."""
    if settings.WEBHOOKS_QUEUE in {queue.name for queue in sender.app.amqp.queues.consume_from.values()}:
        webhooks_sweep_task.apply_async(queue=settings.WEBHOOKS_QUEUE)
