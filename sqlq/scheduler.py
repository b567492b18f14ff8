"""Scheduling: tasks waiting for their eta, periodic tasks, and the consumer's clock work that
moves due tasks to the queue and fires periodic tasks once per wall-clock minute across every
consumer of the queue."""
from __future__ import annotations

import datetime as _dt
import logging
import math
from typing import TYPE_CHECKING, Callable, List, Optional

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
            queue.time.to_timestamp(task.eta) if task.eta else queue.time.now())
        queue.signals.send(SIGNAL_SCHEDULED, task)

    def read(self, timestamp: Optional[Timestamp] = None) -> List[Task]:
        """Remove and return the scheduled tasks due at ``timestamp`` (now by default); a
        message that cannot be decoded goes to the dead letters."""
        queue = self.queue
        tasks = []
        for data in queue.storage.read_schedule(queue.time.timestamp(timestamp)):
            try:
                tasks.append(queue.deserialize_task(data))
            except (DeserializationError, UnknownTaskError) as exc:
                reason = '%s: %s' % (type(exc).__name__, exc)
                logger.error('unusable scheduled message moved to dead letters: %s', reason)
                queue.storage.add_dead_letter(data, reason)
        return tasks

    def enqueue_due(self, timestamp: Optional[Timestamp] = None) -> List[Task]:
        """Move scheduled tasks whose eta has come to the ready queue, in one transaction."""
        queue = self.queue

        def move() -> List[Task]:
            due = self.read(timestamp)
            if due:
                queue.storage.enqueue_many(
                    [(queue.serialize_task(t), t.options.priority or 0) for t in due])
            return due

        return self._enqueued(queue.atomically(move))

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
                                          task.options.priority or 0)
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

