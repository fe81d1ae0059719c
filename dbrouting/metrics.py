"""The replica monitor's state as metrics (registered in DbRoutingConfig.ready; observability/collectors.py)."""

from operator import attrgetter

from django.conf import settings
from prometheus_client.core import GaugeMetricFamily

from observability.collectors import Series, labelled_families

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


# One sample per replica; the lag is known only for a replica that has replayed WAL (no sample otherwise).
REPLICA_SERIES = (
    Series("platform_db_replica_up", "1 if the replica answered the last poll.", lambda status: int(status.up)),
    Series(
        "platform_db_replica_in_rotation",
        "1 if reads may be routed to the replica.",
        lambda status: int(status.in_rotation),
    ),
    Series("platform_db_replica_replay_lsn_bytes", "WAL position the replica has replayed.", attrgetter("replay_lsn")),
    Series("platform_db_replica_lag_bytes", "WAL bytes the replica is behind the primary.", attrgetter("lag_bytes")),
    Series(
        "platform_db_replica_lag_seconds",
        "Seconds the replica has been behind the primary.",
        attrgetter("lag_seconds"),
    ),
)


def replica_families() -> list:
    """The replica monitor's view of this process: in memory, cheap, never cached."""
    if not settings.DATABASE_REPLICAS:
        return []
    snapshot = get_monitor().status()
    primary_up = GaugeMetricFamily("platform_db_primary_up", "1 if the primary answered the last poll.")
    primary_up.add_metric([], 1 if snapshot.primary_up else 0)
    return [*labelled_families("alias", REPLICA_SERIES, snapshot.replicas.items()), primary_up]
