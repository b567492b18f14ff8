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
