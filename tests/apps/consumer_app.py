"""The application ``sqlq consume tests.apps.consumer_app.queue`` loads in the consumer tests
(tests/consumer/test_consume_command.py, tests/tasks/test_periodic.py,
tests/reliability/test_redis_processes.py); its configuration and ledger: ``tests/_harness.py``.

Ledger events (detail after ``event pid time``): ``echo tag``; ``start tag``, ``finish tag`` or
``gave-up tag`` of ``app.block``; ``die code``; ``sleepy``; ``asleepy`` and
``asleepy-cancelled`` (``app.asleepy``, an async task cancelled at its timeout);
``started_at task_id now``;
``periodic now``; ``validate minute matched`` for every minute the periodic task's
validate_datetime is asked about; ``signal name task_name task_id`` for the interrupted,
timeout and retrying signals.
"""
from __future__ import annotations

import asyncio
import datetime
import os
import time
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Callable, List, Optional

from tests import _harness as harness
from tests._harness import CLOCK_ENV, open_queue, queue_from_env, record

if TYPE_CHECKING:  # pragma: no cover
    from sqlq.api import Queue
    from sqlq.task import Task

QUEUE_NAME = 'app'
not_a_queue = 42  # ``sqlq consume tests.apps.consumer_app.not_a_queue`` must be refused


def periodic_minute_matches(dt: datetime.datetime) -> bool:
    """Two minutes out of three (so some minutes must NOT fire)."""
    return dt.minute % 3 != 2


def build(path: str, clock: Optional[Callable[[], float]] = None,
          redis_url: Optional[str] = None) -> 'Queue':
    """A queue on ``path`` (on the Redis server ``redis_url`` if given) with the test tasks
    registered (``queue.app``)."""
    from sqlq.signals import SIGNAL_INTERRUPTED, SIGNAL_RETRYING, SIGNAL_TIMEOUT

    q = open_queue(QUEUE_NAME, path, clock, redis_url, store_intermediate_errors=False)

    echo = q.task(name='app.echo')(harness.echo)
    block = q.task(name='app.block')(harness.block)
    die = q.task(name='app.die')(harness.die)

    @q.task(name='app.sleepy', timeout=0.5, retries=1)
    def sleepy() -> str:
        record('sleepy')
        time.sleep(30)
        return 'slept'

    @q.task(name='app.aecho')
    async def aecho(tag: object) -> List[object]:
        await asyncio.sleep(0)
        return harness.echo(tag)

    @q.task(name='app.asleepy', timeout=0.5, retries=1)
    async def asleepy() -> str:
        record('asleepy')
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            record('asleepy-cancelled')
            raise
        return 'slept'

    @q.task(name='app.started_at', context=True)
    def started_at(task: Any = None) -> float:
        now = q.clock()
        record('started_at', task.id, now)
        return now

    @q.periodic_task(lambda dt: _validate(dt), name='app.periodic')
    def periodic() -> None:
        record('periodic', q.clock())

    @q.signal(SIGNAL_INTERRUPTED, SIGNAL_TIMEOUT, SIGNAL_RETRYING)
    def on_signal(signal: str, task: 'Task', *extra: object) -> None:
        record('signal', signal, task.name, task.id)

    q.app = SimpleNamespace(echo=echo, block=block, die=die,  # type: ignore[attr-defined]
                            sleepy=sleepy, started_at=started_at, periodic=periodic,
                            aecho=aecho, asleepy=asleepy)
    return q


def _validate(dt: datetime.datetime) -> bool:
    if not os.environ.get(CLOCK_ENV):
        return False  # periodic firing only in the tests that run a fake clock
    matches = periodic_minute_matches(dt)
    record('validate', dt.isoformat(), int(matches))
    return matches


queue = queue_from_env(build)
