"""Helpers shared by the behavioural tests."""
from __future__ import annotations

import time
from typing import Callable, Optional


def drain(queue, limit=1000):
    """Claim and execute ready tasks until none is left; how many ran (bounded by ``limit``)."""
    ran = 0
    while ran < limit:
        task = queue.dequeue()
        if task is None:
            return ran
        queue.execute(task)
        ran += 1
    raise AssertionError('queue did not drain within %d tasks' % limit)


def wait_for(predicate, timeout: float = 15.0, what: str = 'condition',
             describe: Optional[Callable[[], str]] = None, interval: float = 0.02):
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` passes
    (AssertionError naming ``what``, plus ``describe()`` for context)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('timed out after %ss waiting for %s%s' % (
                timeout, what, '\n' + describe() if describe else ''))
        time.sleep(interval)  # polling interval of a bounded wait, not synchronisation


class InItsOwnThread:
    """A storage whose calls run in one thread of their own, as a producer's do (a wake-up
    never goes to the writer's own thread). Calls wait ``timeout`` seconds at most."""

    def __init__(self, storage, timeout: float = 10.0):
        from concurrent.futures import ThreadPoolExecutor
        self.storage = storage
        self.timeout = timeout
        self._thread = ThreadPoolExecutor(1)

    def __getattr__(self, name):
        method = getattr(self.storage, name)
        return lambda *args: self._thread.submit(method, *args).result(self.timeout)

    def run(self, fn):
        """``fn(storage)`` in the storage's thread; its result."""
        return self._thread.submit(fn, self.storage).result(self.timeout)

    def close(self):
        self.run(lambda storage: storage.close())
        self._thread.shutdown()
