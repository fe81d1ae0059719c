"""Primary/replica router: writes, migrations and transactions on the primary; reads on a healthy replica
that has replayed everything the client wrote (dbrouting/routing.py), else on the primary.

Installed through DATABASE_ROUTERS only when DATABASE_REPLICA_URLS names replicas, so a single-database
deployment pays nothing.
"""

import itertools

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from .monitor import get_monitor
from .routing import current_state


class PrimaryReplicaRouter:
    def __init__(self):
        self.replicas = frozenset(settings.DATABASE_REPLICAS)
        self.monitor = get_monitor()
        self._turn = itertools.count()

    def db_for_read(self, model, **hints):
        state = current_state()
        if state.primary_depth or state.wrote:
            return DEFAULT_DB_ALIAS
        # A transaction on the primary reads its own snapshot (and its own uncommitted writes).
        primary = state.primary
        if primary is None:
            # connections[] is a context-local lookup (~1 µs); a context keeps its connection object.
            primary = state.primary = connections[DEFAULT_DB_ALIAS]
        if primary.in_atomic_block:
            return DEFAULT_DB_ALIAS
        snapshot = self.monitor.snapshot()
        if snapshot is None or not snapshot.rotation:
            return DEFAULT_DB_ALIAS
        if state.stale_ok_seconds is not None:
            candidates = [
                replica
                for replica in snapshot.replicas.values()
                if replica.replay_lsn is not None and replica.lag_seconds <= state.stale_ok_seconds
            ]
        else:
            required = state.required_lsn()
            if required is None:
                return DEFAULT_DB_ALIAS
            candidates = [replica for replica in snapshot.rotation if replica.replay_lsn >= required]
        if not candidates:
            return DEFAULT_DB_ALIAS
        return candidates[next(self._turn) % len(candidates)].alias

    def db_for_write(self, model, **hints):
        current_state().wrote = True
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        # Every alias holds the same data.
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db not in self.replicas
