"""One object per process, created on first use: the gateway store, the replica monitor, the webhook client."""

import functools
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def process_singleton(factory: Callable[[], T]) -> Callable[[], T]:
    """Make `factory` run once, on the first call, and return its object ever after.

    It runs under a lock so two threads asking at once share one object (each would otherwise open its own
    connections or threads); once the object exists, reading it takes no lock.
    """
    instance: T | None = None
    lock = threading.Lock()

    @functools.wraps(factory)
    def get() -> T:
        nonlocal instance
        if instance is None:
            with lock:
                if instance is None:
                    instance = factory()
        return instance

    return get
