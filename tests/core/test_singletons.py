import threading
from concurrent.futures import ThreadPoolExecutor

from core.singletons import process_singleton


def test_threads_asking_at_once_share_the_one_object_created():
    created = []
    release = threading.Event()

    @process_singleton
    def slow_to_create() -> object:
        """Slow to create."""
        release.wait(1)
        created.append(object())
        return created[-1]

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(slow_to_create) for _ in range(8)]
        release.set()
        results = [future.result() for future in futures]

    assert len(created) == 1
    assert all(result is created[0] for result in results)
    assert slow_to_create() is created[0]
    assert slow_to_create.__doc__ == "Slow to create."
