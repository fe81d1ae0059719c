"""The catalogue of events a tenant can subscribe to, each with a versioned payload.

Every delivery's body is one JSON object:

    {"id": "<event uuid>", "type": "deployment.succeeded", "version": 1,
     "timestamp": "2026-01-01T00:00:00+00:00", "tenant": "<tenant uuid>", "data": {...}}

`data` has the shape documented below for (type, version). A breaking change to a payload adds a new
version; additive fields do not. Services record events with `webhooks.services.event_record(tenant=...,
type=..., data=...)` inside the transaction of the change that caused them.

Subscriptions name types exactly (`website.created`), by prefix wildcard (`deployment.*`, `cdn.*`) or
everything (`*`). `ping` is never matched by a wildcard: it is only sent by the "send test ping" action.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    example: dict
    version: int = 1


_TENANT_SUSPENDED = {
    "id": "uuid", "slug": "acme", "status": "suspended", "suspended_at": "2026-01-05T09:00:00+00:00",
    "reason": "Invoice 2026-014 unpaid",
}  # fmt: skip
_TENANT_REACTIVATED = {**_TENANT_SUSPENDED, "status": "active", "suspended_at": None, "reason": ""}
_WEBSITE = {"id": "uuid", "name": "Site", "status": "active", "hostnames": ["www.example.com"]}
_DEPLOYMENT = {
    "id": "uuid", "website_id": "uuid", "number": 3, "status": "succeeded", "trigger": "api",
    "started_at": "iso-8601|null", "finished_at": "iso-8601|null", "error": "str",
}  # fmt: skip
_APIKEY = {"id": "uuid", "name": "ci", "prefix": "plk_live_", "scopes": ["webhooks:manage"]}
_INVALIDATION = {"id": "uuid", "website_id": "uuid", "backend": "cloudfront", "paths": ["/index.html"], "error": "str"}
_HOSTNAME = {
    "hostname": "www.example.com", "website_id": "uuid", "status": "verified", "verified_at": "iso-8601|null",
    "error": "str", "record": {"type": "TXT", "name": "_platform-challenge.www.example.com", "value": "token"},
}  # fmt: skip
_QUOTA = {
    "month": "2026-12", "quota": 100000, "used": 80000, "remaining": 20000, "resets_at": "iso-8601",
}  # fmt: skip
_EXPORT = {"id": "uuid", "object_key": "exports/…", "size_bytes": 1234, "error": "str"}

# One row an event type: its name, what happened, an example of its data (version 1 unless it says).
# fmt: off
_CATALOGUE = (
    EventType("tenant.suspended", "The tenant was suspended; its API access stopped.", {"tenant": _TENANT_SUSPENDED}),
    EventType("tenant.reactivated", "The tenant was reactivated.", {"tenant": _TENANT_REACTIVATED}),
    EventType("website.created", "A website was created.", {"website": _WEBSITE}),
    EventType("website.updated", "A website's name, status or hostnames changed.", {"website": _WEBSITE}),
    EventType("website.deleted", "A website was deleted.", {"website": {"id": "uuid", "name": "Site"}}),
    EventType("hostname.verified", "A custom hostname's DNS record was found: it is served.", {"hostname": _HOSTNAME}),
    EventType("hostname.verification_failed", "A pending hostname's record was not found in time; checks stopped until one is asked for.", {"hostname": _HOSTNAME}),
    EventType("hostname.record_missing", "A verified hostname's DNS record is gone; it stops being served after the grace period.", {"hostname": _HOSTNAME}),
    EventType("hostname.unverified", "A verified hostname's record stayed missing: it is no longer served.", {"hostname": _HOSTNAME}),
    EventType("deployment.started", "A deployment started running.", {"deployment": _DEPLOYMENT}),
    EventType("deployment.succeeded", "A deployment succeeded and is now served.", {"deployment": _DEPLOYMENT}),
    EventType("deployment.failed", "A deployment failed; the previous one is still served.", {"deployment": _DEPLOYMENT}),
    EventType("apikey.created", "An API key was created (the key itself is never sent).", {"apikey": _APIKEY}),
    EventType("apikey.revoked", "An API key was revoked.", {"apikey": _APIKEY}),
    EventType("usage.quota.warning", "The tenant used 80 % of its monthly API quota (sent once a month).", {"usage": _QUOTA}),
    EventType("usage.quota.exceeded", "The tenant used its whole monthly API quota: requests are refused (429) until the month ends.", {"usage": _QUOTA}),
    EventType("cdn.invalidation.completed", "A CDN invalidation completed.", {"invalidation": _INVALIDATION}),
    EventType("cdn.invalidation.failed", "A CDN invalidation failed.", {"invalidation": _INVALIDATION}),
    EventType("backup.tenant_export.completed", "A tenant export is ready.", {"export": _EXPORT}),
    EventType("backup.tenant_export.failed", "A tenant export failed.", {"export": _EXPORT}),
    EventType("webhook.endpoint.disabled", "An endpoint was disabled (410 Gone, or failing for too long).", {"endpoint": {"id": "uuid", "url": "https://…", "reason": "str"}}),
    EventType("ping", "A test event sent on request to one endpoint.", {"message": "ping"}),
)
# fmt: on
EVENT_TYPES: dict[str, EventType] = {event.name: event for event in _CATALOGUE}

# Types only sent explicitly, never through a subscription.
UNSUBSCRIBABLE = {"ping"}


def pattern_matches(pattern: str, event_type: str) -> bool:
    if event_type in UNSUBSCRIBABLE:
        return False
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def subscribed(patterns: list[str], event_type: str) -> bool:
    return any(pattern_matches(pattern, event_type) for pattern in patterns)


def invalid_patterns(patterns: list[str]) -> list[str]:
    """Patterns that match no type of the catalogue (typos are refused, not silently ignored)."""
    return [p for p in patterns if not any(pattern_matches(p, name) for name in EVENT_TYPES)]
