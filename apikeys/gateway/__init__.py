"""The API gateway's state and decisions: the store interface (base), the Redis and in-memory stores,
the Lua scripts (lua/), request outcomes carried along with later calls, and the per-request decision."""

from .decision import (
    ApiKeyContext,
    BackendUnavailable,
    PendingDecision,
    decide,
    decide_from_database,
    publish_key,
    publish_tenant,
)

__all__ = [
    "ApiKeyContext",
    "BackendUnavailable",
    "PendingDecision",
    "decide",
    "decide_from_database",
    "publish_key",
    "publish_tenant",
]
