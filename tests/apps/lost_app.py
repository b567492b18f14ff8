"""The application ``sqlq consume tests.apps.lost_app.queue`` loads in
tests/reliability/test_nothing_lost.py; its configuration and ledger: ``tests/_harness.py``.

Ledger events of ``lost.record`` (detail: the key): ``start`` when the body begins, ``body`` when
it ends (both before the outcome commits; ``lost.arecord``: the same, as a coroutine) and
``settled`` from a post-execute hook, i.e. after
the outcome and the release of the claim were committed. A run with ``start`` but no
``settled`` was in flight when its process died. The other tasks: ``start``/``finish``/
``gave-up tag`` (``lost.block``, ``lost.block_once``), ``echo tag``, ``die code``
(``lost.die``, ``lost.die_once``: at most once),
``unstorable`` and ``unknown tag``.

``build(path, extra=True)`` also registers ``lost.unknown``, which the consumer's queue does
not know.
"""
from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Callable, Dict, NoReturn, Optional

from tests import _harness as harness
from tests._harness import open_queue, queue_from_env, record

if TYPE_CHECKING:  # pragma: no cover
    from sqlq.api import Queue
    from sqlq.task import Task

QUEUE_NAME = 'lost'


class Unstorable:
    """A value that cannot be pickled: its ``__reduce__`` raises."""

    def __reduce__(self) -> NoReturn:
        raise RuntimeError('Unstorable refuses to be pickled')


def build(path: str, clock: Optional[Callable[[], float]] = None,
          redis_url: Optional[str] = None, extra: bool = False) -> 'Queue':
    """A queue on ``path`` with the test tasks registered (``queue.app``; ``extra``: also
    ``lost.unknown``)."""
    q = open_queue(QUEUE_NAME, path, clock, redis_url)

    @q.task(name='lost.record')
    def record_key(key: str, work: float = 0.0) -> str:
        record('start', key)
        if work:
            time.sleep(work)  # simulated work (keeps a task in flight for a while)
        record('body', key)
        return key

    @q.task(name='lost.arecord')
    async def arecord(key: str, work: float = 0.0) -> str:
        """``lost.record`` as a coroutine (for ``-k asyncio``)."""
        record('start', key)
        if work:
            await asyncio.sleep(work)
        record('body', key)
        return key

    @q.post_execute()
    def settled(task: 'Task', value: object, exception: Optional[BaseException]) -> None:
        if task.name in ('lost.record', 'lost.arecord'):
            record('settled', task.args[0])

    block_normal = q.task(name='lost.block')(harness.block)
    block_once = q.task(name='lost.block_once', at_most_once=True)(harness.block)

    echo = q.task(name='lost.echo')(harness.echo)
    die = q.task(name='lost.die')(harness.die)
    die_once = q.task(name='lost.die_once', at_most_once=True)(harness.die)

    @q.task(name='lost.unstorable')
    def unstorable() -> Unstorable:
        record('unstorable')
        return Unstorable()

    tasks: Dict[str, Any] = dict(record=record_key, arecord=arecord, block=block_normal,
                                 block_once=block_once, echo=echo, die=die, die_once=die_once,
                                 unstorable=unstorable)
    if extra:
        @q.task(name='lost.unknown')
        def unknown(tag: str) -> str:
            record('unknown', tag)
            return tag
        tasks['unknown'] = unknown

    q.app = SimpleNamespace(**tasks)  # type: ignore[attr-defined]
    return q


queue = queue_from_env(build)
