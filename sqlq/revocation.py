"""Revoking tasks: one invocation (by id) or every invocation of a task, for ever, until an
instant, or once -- and ``reschedule``, which revokes one invocation and enqueues a copy.

This is the only module that knows how revoke flags are keyed in the queue's key/value store:
``revoke:<task id>`` and ``revoke-all:<task name>``, holding ``(until, once)``.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Union

from ._time import Delay, Timestamp
from .options import check_options
from .result import Result
from .task import Task
from .wrapper import TaskWrapper

if TYPE_CHECKING:  # pragma: no cover
    from .api import EnqueueResult, Queue
    from .delivery import Delivery

__all__ = ['Revocations', 'REVOKE_PREFIX', 'REVOKE_CLASS_PREFIX', 'FLAGS_PREFIX',
           'REVOKE_PREFETCH_TTL']

REVOKE_PREFIX = 'revoke:'
REVOKE_CLASS_PREFIX = 'revoke-all:'
#: What every revoke flag's key starts with.
FLAGS_PREFIX = 'revoke'
# A revocation made this long (seconds) before a claimed task starts may go unseen: a worker
# reads the revoke flags of a batch of claims at once and trusts them for this long.
REVOKE_PREFETCH_TTL = 0.05

#: What may be revoked: a task instance or its Result, a task class or wrapper (every
#: invocation), a task id.
Target = Union[Task, 'Result[Any]', type, 'TaskWrapper[Any, Any]', str]


class Revocations:
    """A queue's revoke flags."""

    def __init__(self, queue: 'Queue') -> None:
        self.queue = queue

    @staticmethod
    def key(target: Any) -> str:
        """The flag key of ``target`` (an invocation's, or a whole task's)."""
        if isinstance(target, (Task, Result)):
            return REVOKE_PREFIX + target.id
        if isinstance(target, type) and issubclass(target, Task):
            return REVOKE_CLASS_PREFIX + target.registered_name
        if isinstance(target, TaskWrapper):
            return REVOKE_CLASS_PREFIX + target.registered_name
        if isinstance(target, str):
            return REVOKE_PREFIX + target
        raise TypeError('cannot revoke %r' % (target,))

    def revoke(self, key: str, revoke_until: Optional[Timestamp] = None,
               revoke_once: bool = False) -> None:
        """Set the flag ``key`` (until ``revoke_until``; cleared by its first use if
        ``revoke_once``)."""
        queue = self.queue
        until = None if revoke_until is None else queue.time.timestamp(revoke_until)
        queue.storage.put_data(key, queue.serializer.serialize((until, bool(revoke_once))))

    def restore(self, key: str) -> bool:
        """Clear the flag ``key``; True if it was set."""
        return self.queue.storage.delete_data(key)

    def prefetch(self, deliveries: Sequence['Delivery'], flags_possible: bool = True) -> None:
        """Read the revoke flags of claimed tasks in one query, for their runs to use (instead
        of one read per task) if they start within REVOKE_PREFETCH_TTL seconds.
        ``flags_possible=False``: their claims found no revoke flag at all; nothing is read."""
        if not flags_possible:
            none: Dict[str, bytes] = {}
            for delivery in deliveries:
                delivery.revoke_flags = (time.monotonic(), none)
            return
        keys = set()
        for delivery in deliveries:
            keys.add(REVOKE_PREFIX + delivery.task.id)
            keys.add(REVOKE_CLASS_PREFIX + delivery.task.registered_name)
        prefetched = (time.monotonic(), self.queue.storage.peek_many(list(keys)))
        for delivery in deliveries:
            delivery.revoke_flags = prefetched

    def is_revoked(self, target: Any, now: float, peek: bool,
                   delivery: Optional['Delivery'] = None) -> bool:
        """Whether ``target`` is revoked at ``now``; unless ``peek``, a revoke-once flag is
        used up (and an expired one deleted). ``delivery``: the task's, whose prefetched
        flags are used if fresh."""
        queue = self.queue
        storage = queue.storage
        if isinstance(target, Result):
            target = target.task
        keys = [self.key(target)]
        flags = None
        if isinstance(target, Task):
            keys.append(REVOKE_CLASS_PREFIX + target.registered_name)
            if delivery is not None:
                prefetched, delivery.revoke_flags = delivery.revoke_flags, None
                if prefetched is not None and \
                        time.monotonic() - prefetched[0] < REVOKE_PREFETCH_TTL:
                    flags = prefetched[1]
        if flags is None:
            flags = storage.peek_many(keys)  # one read on the path to a task's start
        for key in keys:
            raw = flags.get(key)
            if raw is None:
                continue
            until, once = queue.serializer.deserialize(raw)
            if until is not None and until <= now:
                if not peek:
                    storage.delete_data(key)
                continue
            if once and not peek:
                storage.delete_data(key)
            return True
        return False

    def reschedule(self, task: Task, eta: Optional[Timestamp] = None,
                   delay: Optional[Delay] = None, expires: Any = None,
                   priority: Optional[int] = None,
                   preserve_pipeline: bool = True) -> 'EnqueueResult':
        """Revoke ``task`` once and enqueue a copy with a new id at ``eta``/after ``delay``."""
        queue = self.queue
        options = task.options.updated(
            check_options({'priority': priority, 'expires': expires}, 'reschedule'))
        self.revoke(self.key(task), revoke_once=True)
        copy = type(task)(
            task.args, task.kwargs, eta=queue.time.resolve_eta(eta, delay), options=options,
            on_complete=task.on_complete if preserve_pipeline else None,
            on_error=task.on_error if preserve_pipeline else None)
        return queue.enqueue(copy)
