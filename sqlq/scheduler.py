"""Scheduling: tasks waiting for their eta, periodic tasks, and the consumer's clock work that
moves due tasks to the queue and fires periodic tasks once per wall-clock minute across every
consumer of the queue."""
from __future__ import annotations

import datetime as _dt
import logging
import math
import time
from typing import TYPE_CHECKING, Callable, List, Optional, Tuple

from ._gc import GC_PAUSE_MIN_BATCH, cycle_collector_paused
from ._time import Timestamp
from .exceptions import DeserializationError, UnknownTaskError
from .signals import SIGNAL_ENQUEUED, SIGNAL_SCHEDULED
from .task import Task

if TYPE_CHECKING:  # pragma: no cover
    from .api import Queue

__all__ = ['Schedule', 'Scheduler', 'PERIODIC_PREFIX', 'PERIODIC_MARK_TTL']

logger = logging.getLogger('sqlq.scheduler')

#: Key prefix of the marks that let one consumer fire a periodic task for a given minute.
PERIODIC_PREFIX = 'periodic:'
#: Seconds a "fired" mark is kept (longer than any consumer's clock skew).
PERIODIC_MARK_TTL = 7200.0


class Schedule:
    """A queue's schedule: tasks with an eta, and its periodic tasks."""

    def __init__(self, queue: 'Queue') -> None:
        self.queue = queue

    def add(self, task: Task) -> None:
        """Put ``task`` in the schedule for its eta."""
        queue = self.queue
        queue.storage.add_to_schedule(
            queue.serialize_task(task),
            queue.time.to_timestamp(task.eta) if task.eta else queue.time.now(), task.id)
        queue.signals.send(SIGNAL_SCHEDULED, task)

    #: Most due tasks :meth:`enqueue_due` moves in one transaction: it holds SQLite's write
    #: lock for about 5 ms (bench/schedule_burst.py), not seconds.
    chunk = 500
    #: Seconds :meth:`enqueue_due` pauses between two transactions, so that the writers
    #: waiting for the lock meanwhile (their busy handler retries every 2 ms at most) get it.
    pause = 0.002

    def read(self, timestamp: Optional[Timestamp] = None,
             limit: Optional[int] = None) -> List[Task]:
        """Remove and return the scheduled tasks due at ``timestamp`` (now by default): all,
        or the earliest ``limit``; a message that cannot be decoded goes to the dead
        letters."""
        return self._take(self.queue.time.timestamp(timestamp), limit)[0]

    def _take(self, timestamp: float, limit: Optional[int]) -> Tuple[List[Task], int]:
        """The due tasks (at most ``limit``) and how many messages were taken."""
        queue = self.queue
        tasks = []
        taken = queue.storage.read_schedule(timestamp, limit)
        for data in taken:
            try:
                tasks.append(queue.deserialize_task(data))
            except (DeserializationError, UnknownTaskError) as exc:
                reason = '%s: %s' % (type(exc).__name__, exc)
                logger.error('unusable scheduled message moved to dead letters: %s', reason)
                queue.storage.add_dead_letter(data, reason)
        return tasks, len(taken)

    def enqueue_due(self, timestamp: Optional[Timestamp] = None) -> List[Task]:
        """Move scheduled tasks whose eta has come to the ready queue, earliest first, in
        transactions of at most :attr:`chunk` tasks, until none due at ``timestamp`` (now by
        default) is left: a burst never holds the storage's write lock for long."""
        queue = self.queue
        at = queue.time.timestamp(timestamp)
        chunk = max(int(self.chunk), 1)
        moved: List[Task] = []
        while True:
            def move() -> Tuple[List[Task], int]:
                due, taken = self._take(at, chunk)
                if due:
                    queue.storage.enqueue_many(
                        [(queue.serialize_task(t), t.options.priority or 0) for t in due],
                        [t.id for t in due])
                return due, taken

            # No cycle collection while the lock is held (the moved tasks pile up: a full
            # collection scans them all); it runs between two transactions instead.
            with cycle_collector_paused(GC_PAUSE_MIN_BATCH):
                due, taken = queue.atomically(move)
            moved.extend(self._enqueued(due))
            if taken < chunk:
                return moved
            time.sleep(self.pause)  # let the writers waiting for the lock in

    def periodic_due(self, timestamp: _dt.datetime) -> List[Task]:
        """New instances of the periodic tasks whose ``validate_datetime(timestamp)`` is True."""
        tasks = []
        for task_class in self.queue.registry.periodic():
            try:
                due = task_class.validate_datetime(timestamp)  # type: ignore[attr-defined]
            except Exception:
                logger.exception('validate_datetime of %s failed', task_class.name)
                continue
            if due:
                tasks.append(task_class())
        return tasks

    def enqueue_periodic(self, minute: float) -> List[Task]:
        """Enqueue the periodic tasks due in the minute starting at epoch ``minute``, each
        at most once however many consumers call this for that minute."""
        queue = self.queue
        moment = queue.time.datetime(minute)
        assert moment is not None
        due = self.periodic_due(moment)

        def fire() -> List[Task]:
            fired = []
            for task in due:
                key = '%s%s:%d' % (PERIODIC_PREFIX, task.name, int(minute))
                if queue.storage.put_if_empty(key, b'1', ttl=PERIODIC_MARK_TTL):
                    queue.storage.enqueue(queue.serialize_task(task),
                                          task.options.priority or 0, task.id)
                    fired.append(task)
            return fired

        return self._enqueued(queue.atomically(fire))

    def _enqueued(self, tasks: List[Task]) -> List[Task]:
        signals = self.queue.signals
        if signals.has_receivers():
            for task in tasks:
                signals.send(SIGNAL_ENQUEUED, task)
        return tasks


class Scheduler:
    """The consumer's clock work: one ``tick(now)`` does the due work and says how long to
    wait before the next."""

    #: Seconds before its eta a scheduled task is moved to the queue: about what the move and
    #: a worker's wake-up and claim take, so that it starts at its eta (a worker that gets it
    #: early waits for the eta: ``sqlq.execution.EARLY_WAIT``, which must be larger).
    lead = 0.003

    def __init__(self, queue: 'Queue', periodic: bool = True, interval: float = 1.0,
                 clock: Optional[Callable[[], float]] = None) -> None:
        if interval <= 0:
            raise ValueError('scheduler interval must be positive, not %r' % (interval,))
        self.queue = queue
        self.periodic = periodic
        self.interval = interval
        self.clock = clock or queue.clock
        self._last_minute: Optional[float] = None

    def tick(self, now: Optional[float] = None) -> float:
        """Enqueue what is due at ``now``; seconds until something may next be due."""
        now = self.clock() if now is None else now
        next_eta = self.queue.next_scheduled_time()
        if next_eta is not None and next_eta <= now + self.lead:
            moved = self.queue.enqueue_due(now + self.lead)
            if moved:
                logger.debug('enqueued %d scheduled task(s)', len(moved))
            next_eta = self.queue.next_scheduled_time()
        minute = math.floor(now / 60.0) * 60.0
        if self.periodic and minute != self._last_minute:
            # Every consumer evaluates each minute; the database lets one of them fire it.
            self._last_minute = minute
            for task in self.queue.enqueue_periodic(minute):
                logger.info('enqueued periodic task %s', task)
        wait = self.interval
        if next_eta is not None:
            wait = min(wait, next_eta - self.lead - now)
        if self.periodic:
            wait = min(wait, minute + 60.0 - now)
        return max(wait, 0.0)

