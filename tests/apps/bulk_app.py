"""The application ``sqlq consume tests.apps.bulk_app.queue`` loads in the tests that drain
large backlogs (tests/reliability/test_bounded_wal.py); its configuration: ``tests/_harness.py``.

``bulk.noop(i)`` returns ``i`` (so that a result is stored) and writes nothing to the ledger:
the cost of a task is the queue's own.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Callable, Optional

from tests._harness import open_queue, queue_from_env

if TYPE_CHECKING:  # pragma: no cover
    from sqlq.api import Queue

QUEUE_NAME = 'bulk'


def build(path: str, clock: Optional[Callable[[], float]] = None,
          redis_url: Optional[str] = None) -> 'Queue':
    """A queue on ``path`` with ``bulk.noop`` registered (``queue.app.noop``)."""
    q = open_queue(QUEUE_NAME, path, clock, redis_url)

    @q.task(name='bulk.noop')
    def noop(i: int) -> int:
        return i

    q.app = SimpleNamespace(noop=noop)  # type: ignore[attr-defined]
    return q


queue = queue_from_env(build)
