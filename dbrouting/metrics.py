"""The replica monitor's state as metrics (registered in DbRoutingConfig.ready; observability/collectors.py)."""

from django.conf import settings
from prometheus_client.core import GaugeMetricFamily

from .monitor import get_monitor

REPLICA_METRIC_NAMES = frozenset(
    {
        "platform_db_replica_up",
        "platform_db_replica_in_rotation",
        "platform_db_replica_replay_lsn_bytes",
        "platform_db_replica_lag_bytes",
        "platform_db_replica_lag_seconds",
        "platform_db_primary_up",
    }
)


def replica_families() -> list:
    """The replica monitor's view of this process: in memory, cheap, never cached."""
    if not settings.DATABASE_REPLICAS:
        return []
    snapshot = get_monitor().status()
    up = GaugeMetricFamily("platform_db_replica_up", "1 if the replica answered the last poll.", labels=["alias"])
    rotation = GaugeMetricFamily(
        "platform_db_replica_in_rotation", "1 if reads may be routed to the replica.", labels=["alias"]
    )
    replay = GaugeMetricFamily(
        "platform_db_replica_replay_lsn_bytes", "WAL position the replica has replayed.", labels=["alias"]
    )
    lag_bytes = GaugeMetricFamily(
        "platform_db_replica_lag_bytes", "WAL bytes the replica is behind the primary.", labels=["alias"]
    )
    lag_seconds = GaugeMetricFamily(
        "platform_db_replica_lag_seconds", "Seconds the replica has been behind the primary.", labels=["alias"]
    )
    for alias, status in snapshot.replicas.items():
        up.add_metric([alias], 1 if status.up else 0)
        rotation.add_metric([alias], 1 if status.in_rotation else 0)
        if status.replay_lsn is not None:
            replay.add_metric([alias], status.replay_lsn)
            lag_bytes.add_metric([alias], status.lag_bytes)
            lag_seconds.add_metric([alias], status.lag_seconds)
    primary_up = GaugeMetricFamily("platform_db_primary_up", "1 if the primary answered the last poll.")
    primary_up.add_metric([], 1 if snapshot.primary_up else 0)
    return [up, rotation, replay, lag_bytes, lag_seconds, primary_up]
