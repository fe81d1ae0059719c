"""Concurrent clients of the gateway store, for the tests and for benchmarks.api_gateway's `plan_exact`:
threads here and in spawned processes, asking for places either a fixed number of times (`hammer`) or
until a deadline (`hammer_until`). Imports no Django model, so a spawned process can load it without the
app registry."""

import multiprocessing
import os
import threading
import time

import redis

from apikeys.gateway import base
from apikeys.gateway.redis_store import RedisGatewayStore

PAUSE_SECONDS = 0.005  # between one deadline client's attempts: keeps 64 clients from saturating two cores


def run_threads(client, threads: int) -> None:
    """Run `client` in `threads` threads at once and wait for all of them."""
    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


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

    run_threads(client, threads)
    return sum(admitted)


def hammer_until(store, key: tuple[str, str], threads: int, start_at: float, stop_at: float) -> tuple[int, float]:
    """Requests admitted to `threads` clients asking from `start_at` to `stop_at` (epoch seconds), and when
    the last reply arrived (Redis's clock is this machine's: no decision was taken after it)."""
    admitted, last_replies = [], []

    def client():
        time.sleep(max(start_at - time.time(), 0))
        count = 0
        last_reply = 0.0
        while time.time() < stop_at:
            decision = store.evaluate(lookup_id=key[0], secret_hash=key[1], outcomes=[])
            last_reply = time.time()
            count += decision.code == base.OK
            time.sleep(PAUSE_SECONDS)
        admitted.append(count)
        last_replies.append(last_reply)

    run_threads(client, threads)
    return sum(admitted), max(last_replies)


def _in_spawned_process(function_name, redis_url, args, results):
    store = RedisGatewayStore(redis.Redis.from_url(redis_url))
    results.put(globals()[function_name](store, *args))


def spawn(function, *args):
    """Start `function(store, *args)` (hammer or hammer_until) in a spawned process with a Redis store of its
    own; returns the process and the queue its result arrives on."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(
        target=_in_spawned_process, args=(function.__name__, os.environ["REDIS_URL"], args, results)
    )
    process.start()
    return process, results


def two_processes(key: tuple[str, str], threads_each: int, attempts: int) -> int:
    """`threads_each` threads here and as many in a spawned process, all on one key: how many admitted."""
    other, results = spawn(hammer, key, threads_each, attempts)
    here = hammer(base.gateway_store(), key, threads_each, attempts)
    there = results.get(timeout=120)
    other.join(timeout=30)
    return here + there


def across_two_processes(
    store, key: tuple[str, str], threads: int, start_at: float, stop_at: float
) -> tuple[int, float]:
    """Half the threads here, half in a spawned process (started before `start_at`), on one key: how many
    were admitted, and when the last reply arrived."""
    other, results = spawn(hammer_until, key, threads // 2, start_at, stop_at)
    here = hammer_until(store, key, threads - threads // 2, start_at, stop_at)
    there = results.get(timeout=120)
    other.join(timeout=30)
    return here[0] + there[0], max(here[1], there[1])
