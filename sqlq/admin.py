"""Inspecting and operating a queue: listings, counts and stats, dead letters, recovery of
dead workers' claims, and storage upkeep.

What the ``sqlq`` command's inspection commands and a dashboard read. Listings decode stored
tasks; a message that cannot be decoded is skipped (logged) in ``pending``/``scheduled`` and
shown without a task in ``running``/``failed``.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, NamedTuple, Optional, TypeVar

from .exceptions import DeserializationError, UnknownTaskError
from .recovery import ClaimRecovery
from .task import Task

if TYPE_CHECKING:  # pragma: no cover
    from .api import Queue

__all__ = ['Admin', 'RunningTask', 'FailedTask']

logger = logging.getLogger('sqlq')
T = TypeVar('T')


class RunningTask(NamedTuple):
    """A task claimed by a worker (see ``Queue.running``)."""
    task: Optional[Task]
    row_id: int
    owner: str
    claimed_at: float
    attempts: int
    recoveries: int
    owner_alive: Optional[bool]


class FailedTask(NamedTuple):
    """A task that failed for good (see ``Queue.failed``)."""
    id: int
    task: Optional[Task]
    reason: str
    failed_at: float
    enqueued_at: Optional[float]
    attempts: int


class Admin:
    """A queue's inspection and operations."""

    def __init__(self, queue: 'Queue') -> None:
        self.queue = queue

    def _decode(self, data: bytes) -> Optional[Task]:
        try:
            return self.queue.deserialize_task(data)
        except (DeserializationError, UnknownTaskError):
            return None

    def _decode_listing(self, items: Iterable[bytes]) -> List[Task]:
        tasks = []
        for data in items:
            try:
                tasks.append(self.queue.deserialize_task(data))
            except (DeserializationError, UnknownTaskError) as exc:
                logger.warning('skipping unreadable stored task in listing: %s', exc)
        return tasks

    @staticmethod
    def _page(items: Callable[[Optional[int]], List[T]], limit: Optional[int],
              offset: int) -> List[T]:
        """``limit`` items from ``offset`` on (only those are decoded by the caller)."""
        if offset <= 0:
            return items(limit)
        return items(None if limit is None else offset + limit)[offset:]

    def pending(self, limit: Optional[int] = None, offset: int = 0) -> List[Task]:
        """Ready tasks in the order they will run (``limit`` of them from ``offset`` on)."""
        return self._decode_listing(self._page(self.queue.storage.enqueued_items, limit,
                                               offset))

    def scheduled(self, limit: Optional[int] = None, offset: int = 0) -> List[Task]:
        """Tasks waiting for their eta, soonest first."""
        return self._decode_listing(self._page(self.queue.storage.scheduled_items, limit,
                                               offset))

    def all_results(self) -> Dict[str, Any]:
        serializer = self.queue.serializer
        return {key: serializer.deserialize(value)
                for key, value in self.queue.storage.result_items().items()}

    def running(self) -> List[RunningTask]:
        """Tasks claimed by workers, oldest claim first, with their owners."""
        storage = self.queue.storage
        recovery = ClaimRecovery(storage)
        info = {o.id: o for o in storage.owners()}
        now = time.time()
        items = []
        for item in storage.claimed_items():
            owner = info.get(item.owner)
            alive = not recovery.owner_is_dead(
                item.owner, owner.started_at if owner else None,
                owner.heartbeat_at if owner else None, now)
            items.append(RunningTask(self._decode(item.data), item.id, item.owner,
                                     item.claimed_at, item.attempts, item.recoveries, alive))
        return items

    def failed(self, limit: Optional[int] = None, offset: int = 0) -> List[FailedTask]:
        """Tasks that failed for good (dead letters), oldest first; ``task`` is None for a
        message that cannot be decoded."""
        return [FailedTask(letter.id, self._decode(letter.data), letter.reason,
                           letter.failed_at, letter.enqueued_at, letter.attempts)
                for letter in self._page(self.queue.storage.dead_letters, limit, offset)]

    def recover_claims(self) -> int:
        """Return tasks claimed by dead workers/consumers to the queue; how many."""
        return ClaimRecovery(self.queue.storage).recover()

    def stats(self) -> Dict[str, Any]:
        """Counts (pending, scheduled, running, results, failed) and database sizes."""
        raw = self.queue.storage.stats()
        stats: Dict[str, Any] = {
            'queue': self.queue.name,
            'pending': raw.get('ready', 0),
            'scheduled': raw.get('scheduled', 0),
            'running': raw.get('claimed', 0),
            'results': raw.get('results', 0),
            'failed': raw.get('dead_letters', 0),
        }
        for key, value in raw.items():
            if key not in ('ready', 'claimed', 'dead_letters'):
                stats.setdefault(key, value)
        stats.setdefault('db_size', 0)
        stats.setdefault('wal_size', 0)
        storage = self.queue.storage
        # Which database: a file's absolute path, a server's address.
        stats['database'] = getattr(storage, 'filename', None) or \
            getattr(storage, 'address', None) or 'memory'
        return stats
