"""The webhooks services other apps and the API call, by topic: the outbox (webhooks/outbox.py), endpoints
(webhooks/endpoints.py), delivering in two lanes (webhooks/delivery.py, policy in webhooks/policy.py) and
recovery (webhooks/recovery.py). `event_record` is the one entry point for other apps."""

from .delivery import (
    deliveries_attempt,
    deliveries_pump,
    delivery_attempt,
    event_deliver,
    event_fan_out,
    events_deliver_pending,
)
from .endpoints import (
    endpoint_breaker_reset,
    endpoint_create,
    endpoint_delete,
    endpoint_disable,
    endpoint_enable,
    endpoint_ping,
    endpoint_rotate_secret,
    endpoint_signing_secrets,
    endpoint_update,
)
from .outbox import event_body, event_record, fan_out_queued_key
from .recovery import attempts_mark_lost, deliveries_replay_failed, delivery_redeliver, webhooks_sweep

__all__ = [
    "attempts_mark_lost", "deliveries_attempt", "deliveries_pump", "deliveries_replay_failed", "delivery_attempt",
    "delivery_redeliver", "endpoint_breaker_reset", "endpoint_create", "endpoint_delete", "endpoint_disable",
    "endpoint_enable", "endpoint_ping", "endpoint_rotate_secret", "endpoint_signing_secrets", "endpoint_update",
    "event_body", "event_deliver", "event_fan_out", "event_record", "events_deliver_pending", "fan_out_queued_key",
    "webhooks_sweep",
]  # fmt: skip
