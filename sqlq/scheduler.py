"""The consumer's clock work: moving due scheduled tasks to the queue, and firing periodic
tasks once per wall-clock minute across every consumer of the queue."""
from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:  # pragma: no cover
    from .api import Queue

logger = logging.getLogger('sqlq.scheduler')


class Scheduler:
    """One ``tick(now)`` does the due work and says how long to wait before the next."""

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
        if next_eta is not None and next_eta <= now:
            moved = self.queue.enqueue_due(now)
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
            wait = min(wait, next_eta - now)
        if self.periodic:
            wait = min(wait, minute + 60.0 - now)
        return max(wait, 0.0)


def monotonic_deadline(seconds: float) -> float:
    return time.monotonic() + seconds
