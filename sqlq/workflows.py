"""Workflows of several tasks: ``group`` (enqueued together) and ``chord`` (a callback run
with the results of a group), with the chord's bookkeeping in the queue's key/value store.

Pipelines (``task.then(...)``/``.error(...)``) are links on the Task itself (see
:mod:`sqlq.task`); the outcome of each step enqueues the next (:mod:`sqlq.decisions`).
"""
from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any, Iterable, Optional, Union

from .result import SKIPPED, Result, ResultGroup
from .storage.base import EMPTY
from .task import Task
from .wrapper import TaskWrapper

if TYPE_CHECKING:  # pragma: no cover
    from .api import Queue

__all__ = ['group', 'chord', 'ChordResult', 'Chords', 'CHORD_PREFIX']

logger = logging.getLogger('sqlq')

#: Key prefix of a chord's callback and its members' values.
CHORD_PREFIX = 'chord:'


class group:
    """Tasks to enqueue together (one transaction); ``queue.enqueue(group)`` -> ResultGroup."""

    def __init__(self, tasks: Iterable[Task]) -> None:
        self.tasks = list(tasks)


class chord:
    """Tasks run in parallel, then ``callback`` with the list of their results (in order).

    A failed member contributes an Error, a revoked/expired/canceled one SKIPPED.
    """

    def __init__(self, tasks: Iterable[Task], callback: Union[Task, TaskWrapper]) -> None:
        self.tasks = list(tasks)
        if not self.tasks:
            raise ValueError('a chord needs at least one task')
        if isinstance(callback, TaskWrapper):
            callback = callback.s()
        if not isinstance(callback, Task):
            raise TypeError('chord callback must be a task or Task, not %s'
                            % type(callback).__name__)
        self.callback = callback


class ChordResult:
    """What enqueueing a chord returns: ``get()`` is the callback's result."""

    def __init__(self, results: ResultGroup, callback: Union[Result, ResultGroup]) -> None:
        self.results = results
        self.callback = callback

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self.callback.get(*args, **kwargs)

    __call__ = get

    def reset(self) -> None:
        for result in self.results:
            result.reset()
        if isinstance(self.callback, Result):
            self.callback.reset()


class Chords:
    """A queue's chords: writing one, and recording each member's final value."""

    def __init__(self, queue: 'Queue') -> None:
        self.queue = queue

    def enqueue(self, spec: chord) -> ChordResult:
        """Store the callback and enqueue the members, in one transaction."""
        queue = self.queue
        chord_id = str(uuid.uuid4())
        callback_data = queue.serialize_task(spec.callback)
        for index, task in enumerate(spec.tasks):
            task.chord_config = {'id': chord_id, 'index': index, 'size': len(spec.tasks)}

        def write() -> ResultGroup:
            queue.storage.put_data(CHORD_PREFIX + chord_id, callback_data)
            return queue.enqueue_many(spec.tasks)

        members = queue.atomically(write)
        return ChordResult(members, Result(queue, spec.callback))

    def member_done(self, task: Task, value: Any) -> Optional[Task]:
        """Record a chord member's final value; the callback Task once all are in."""
        queue, storage = self.queue, self.queue.storage
        config = task.chord_config
        assert config is not None
        prefix = '%s%s:' % (CHORD_PREFIX, config['id'])
        storage.put_data(prefix + str(config['index']), queue.serializer.serialize(value))
        if storage.incr(prefix + 'done') < config['size']:
            return None
        values = []
        for index in range(config['size']):
            raw = storage.pop_data(prefix + str(index))
            values.append(SKIPPED if raw is EMPTY else queue.serializer.deserialize(raw))
        storage.delete_data(prefix + 'done')
        raw_callback = storage.pop_data(CHORD_PREFIX + config['id'])
        if raw_callback is EMPTY:
            logger.error('chord %s lost its callback', config['id'])
            return None
        callback = queue.deserialize_task(raw_callback)
        callback.extend_data((values,))
        return callback
