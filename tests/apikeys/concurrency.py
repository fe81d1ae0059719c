"""Concurrent clients of the gateway store: threads here and in a spawned process. Imports no Django model,
so a spawned process can load it without the app registry."""

import multiprocessing
import os
import threading

import redis

from apikeys.gateway import base
from apikeys.gateway.redis_store import RedisGatewayStore


def hammer(store, key: tuple[str, str], threads: int, attempts: int, cost: int = 1) -> int:
    """Requests admitted to `threads` clients starting together, `attempts` each, on one key."""
    admitted, start = [], threading.Barrier(threads)

    def client():
        start.wait()
        count = 0
        for _ in range(attempts):
            decision = store.evaluate(lookup_id=key[0], secret_hash=key[1], outcomes=[], cost=cost)
            count += decision.code == base.OK
        admitted.append(count)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(admitted)


def _process_client(redis_url, key, threads, attempts, results):
    results.put(hammer(RedisGatewayStore(redis.Redis.from_url(redis_url)), key, threads, attempts))


def two_processes(key: tuple[str, str], threads_each: int, attempts: int) -> int:
    """`threads_each` threads here and as many in a spawned process, all on one key: how many admitted."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    args = (os.environ["REDIS_URL"], key, threads_each, attempts, results)
    other = context.Process(target=_process_client, args=args)
    other.start()
    here = hammer(base.gateway_store(), key, threads_each, attempts)
    there = results.get(timeout=120)
    other.join(timeout=30)
    return here + there
