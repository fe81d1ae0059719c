"""Counting probes shared by the benchmark and the tests: they observe real calls, they fake nothing."""

import threading

from redis.connection import AbstractConnection


class RedisRoundTrips:
    """Counts Redis replies read by this process (one per round trip; a pipeline of n counts n)."""

    _lock = threading.Lock()

    def __init__(self):
        self.count = 0

    def __enter__(self):
        probe = self
        self._original = original = AbstractConnection.read_response

        def read_response(connection, *args, **kwargs):
            probe.count += 1
            return original(connection, *args, **kwargs)

        AbstractConnection.read_response = read_response
        return self

    def __exit__(self, *exc):
        AbstractConnection.read_response = self._original
        return False
