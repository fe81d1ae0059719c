"""Clients of the gateway store for benchmarks.api_gateway's `plan_exact`: threads here and in a spawned
process, each asking for places until a deadline. Imports no Django model (a spawned process loads it
without the app registry)."""

import multiprocessing
import os
import threading
import time

import redis

from apikeys.gateway import base
from apikeys.gateway.redis_store import RedisGatewayStore

PAUSE_SECONDS = 0.005  # between one client's attempts: keeps 64 clients from saturating two cores


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

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(admitted), max(last_replies)


def _process(redis_url, key, threads, start_at, stop_at, results):
    results.put(hammer_until(RedisGatewayStore(redis.Redis.from_url(redis_url)), key, threads, start_at, stop_at))


def across_two_processes(
    store, key: tuple[str, str], threads: int, start_at: float, stop_at: float
) -> tuple[int, float]:
    """Half the threads here, half in a spawned process (started before `start_at`), on one key: how many
    were admitted, and when the last reply arrived."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    args = (os.environ["REDIS_URL"], key, threads // 2, start_at, stop_at, results)
    other = context.Process(target=_process, args=args)
    other.start()
    here = hammer_until(store, key, threads - threads // 2, start_at, stop_at)
    there = results.get(timeout=120)
    other.join(timeout=30)
    return here[0] + there[0], max(here[1], there[1])
