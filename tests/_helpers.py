"""Helpers shared by the behavioural tests."""
from __future__ import annotations


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
