"""Workflows of several tasks: ``group`` (enqueued together) and ``chord`` (a callback run
with the results of a group), with the chord's bookkeeping in the queue's key/value store.

Pipelines (``task.then(...)``/``.error(...)``) are links on the Task itself (see
:mod:`sqlq.task`); the outcome of each step enqueues the next (:mod:`sqlq.decisions`).

A chord's members are tasks (or pipelines), chords and groups. Its bookkeeping: each task it
runs carries ``chord_config`` (the chord's id, its index among the chord's tasks and their
number); a pipeline hands it on from step to step, so the member's value is its last step's
(or the error or SKIPPED of the step where it stopped). A member chord's callback carries the
outer chord's config instead. The tasks of a member group are tasks of the chord, whose values
are put back together as a list at the group's place (the chord's ``layout``).
"""
from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from .result import SKIPPED, Result, ResultGroup
from .storage.base import EMPTY
from .task import Task, as_task
from .wrapper import TaskWrapper

if TYPE_CHECKING:  # pragma: no cover
    from .api import Queue

__all__ = ['group', 'chord', 'ChordResult', 'Chords', 'CHORD_PREFIX']

logger = logging.getLogger('sqlq')

#: Key prefix of a chord's callback and its members' values.
CHORD_PREFIX = 'chord:'
#: Key suffix of a chord's layout (stored only when it has group members).
_LAYOUT = ':layout'

#: A member of a group or chord.
Member = Union[Task, 'chord', 'group']
#: A task that follows (a callback, a pipeline step, an error handler).
Follower = Union[Task, 'TaskWrapper[Any, Any]']
#: Where each value of a chord's tasks goes in the callback's list: an index into those values,
#: or a list (a group member) of the same.
Layout = List[Any]


class group:
    """Tasks to enqueue together (one transaction); ``queue.enqueue(group)`` -> ResultGroup.

    ``.then(callback)`` makes it a chord; ``.error(handler)`` gives every member the handler.
    """

    def __init__(self, tasks: Iterable[Member]) -> None:
        self.tasks: List[Member] = list(tasks)

    def then(self, task: Follower, *args: Any, **kwargs: Any) -> 'chord':
        """A chord of these tasks whose callback is ``task`` (with ``args``/``kwargs``)."""
        return chord(self.tasks, as_task(task, args, kwargs))

    def error(self, task: Follower, *args: Any, **kwargs: Any) -> 'group':
        """Run ``task`` (with ``args``/``kwargs``, then the exception) when a member fails for
        good: each member gets its own invocation of it. Returns the group."""
        handler = as_task(task, args, kwargs)
        for index, member in enumerate(self.tasks):
            member.error(handler if index == 0 else _copy(handler))
        return self


class chord:
    """Tasks run in parallel, then ``callback`` with the list of their results (in order).

    Members may be tasks, pipelines (their last step's result), chords (their callback's
    result) and groups (the list of their results). A failed member contributes an Error, a
    revoked/expired/canceled one SKIPPED. With no members the callback runs with ``[]``.
    """

    def __init__(self, tasks: Iterable[Member], callback: Follower) -> None:
        self.tasks: List[Member] = list(tasks)
        for member in self.tasks:
            if not isinstance(member, (Task, chord, group)):
                raise TypeError('chord members are tasks, chords or groups, not %s'
                                % type(member).__name__)
        if not isinstance(callback, (Task, TaskWrapper)):
            raise TypeError('chord callback must be a task or Task, not %s'
                            % type(callback).__name__)
        self.callback = as_task(callback, (), {})

    def then(self, task: Follower, *args: Any, **kwargs: Any) -> 'chord':
        """Run ``task`` after the callback, with its result (see ``Task.then``)."""
        self.callback.then(task, *args, **kwargs)
        return self

    def error(self, task: Follower, *args: Any, **kwargs: Any) -> 'chord':
        """Run ``task`` if the callback fails (see ``Task.error``)."""
        self.callback.error(task, *args, **kwargs)
        return self


class ChordResult:
    """What enqueueing a chord returns: ``get()`` is the callback's result.

    ``results``: a Result per task the chord runs (a pipeline's last step; a member chord's
    callback, or the last task chained to it; each task of a member group). ``callback``: the
    callback's Result. ``pipeline_results``: the Results of the callback and the tasks chained
    to it with ``chord.then`` (None if none are).
    """

    def __init__(self, results: ResultGroup[Any], callback: Result[Any],
                 pipeline: Optional[ResultGroup[Any]] = None) -> None:
        self.results = results
        self.callback = callback
        self.pipeline_results = pipeline

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self.callback.get(*args, **kwargs)

    __call__ = get

    def reset(self) -> None:
        """Forget the values read (of the members, the callback and the tasks after it)."""
        for result in self.results:
            result.reset()
        self.callback.reset()
        for result in self.pipeline_results or ():
            result.reset()


class Chords:
    """A queue's chords: writing one, and recording each member's final value."""

    def __init__(self, queue: 'Queue') -> None:
        self.queue = queue

    def enqueue(self, spec: chord) -> ChordResult:
        """Store the callbacks and enqueue the tasks of ``spec`` (and of member chords), in one
        transaction."""
        tracing = self.queue.tracing
        if tracing is not None:
            with tracing.sending(spec.tasks, 'enqueue_chord'):  # type: ignore[arg-type]
                return self._enqueue(spec)
        return self._enqueue(spec)

    def _enqueue(self, spec: chord) -> ChordResult:
        queue = self.queue
        writes: List[Tuple[str, bytes]] = []
        ready: List[Task] = []
        handle = self._plan(spec, None, writes, ready)

        def write() -> None:
            for key, data in writes:
                queue.storage.put_data(key, data)
            queue.enqueue_many(ready)

        queue.atomically(write)
        return handle

    def _plan(self, spec: chord, membership: Optional[Dict[str, Any]],
              writes: List[Tuple[str, bytes]], ready: List[Task]) -> ChordResult:
        """What enqueueing ``spec`` writes (``writes``: keys and values; ``ready``: tasks), its
        callback a member of another chord if ``membership``."""
        queue = self.queue
        chord_id = str(uuid.uuid4())
        tasks, layout = flatten(spec.tasks)
        callback = spec.callback
        callback.chord_config = membership
        if not tasks:
            callback.extend_data((assemble(layout, []),))
            ready.append(callback)
        else:
            writes.append((CHORD_PREFIX + chord_id, queue.serialize_task(callback)))
            if any(isinstance(slot, list) for slot in layout):
                writes.append((CHORD_PREFIX + chord_id + _LAYOUT,
                               queue.serializer.serialize(layout)))
        results: List[Result[Any]] = []
        for index, member in enumerate(tasks):
            config = {'id': chord_id, 'index': index, 'size': len(tasks)}
            if isinstance(member, chord):
                inner = self._plan(member, config, writes, ready)
                results.append(inner.pipeline_results.results[-1] if inner.pipeline_results
                               else inner.callback)
            else:
                member.chord_config = config
                ready.append(member)
                results.append(Result(queue, member.chain()[-1]))
        callback_result: Result[Any] = Result(queue, callback)
        pipeline = None
        if callback.on_complete is not None:  # the callback's Result first: one handle
            pipeline = ResultGroup([callback_result] + [Result(queue, task)
                                                        for task in callback.chain()[1:]])
        return ChordResult(ResultGroup(results), callback_result, pipeline)

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
        raw_layout = storage.pop_data(CHORD_PREFIX + config['id'] + _LAYOUT)
        raw_callback = storage.pop_data(CHORD_PREFIX + config['id'])
        if raw_callback is EMPTY:
            logger.error('chord %s lost its callback', config['id'])
            return None
        callback = queue.deserialize_task(raw_callback)
        if raw_layout is not EMPTY:
            values = assemble(queue.serializer.deserialize(raw_layout), values)
        callback.extend_data((values,))
        return callback


def flatten(members: Sequence[Member]) -> Tuple[List[Union[Task, chord]], Layout]:
    """The tasks and chords a chord with these members runs (a group's members in its place),
    and the layout putting their values back in the members' shape."""
    found: List[Union[Task, chord]] = []

    def walk(items: Sequence[Member]) -> Layout:
        layout: Layout = []
        for item in items:
            if isinstance(item, group):
                layout.append(walk(item.tasks))
            else:
                layout.append(len(found))
                found.append(item)
        return layout

    return found, walk(members)


def assemble(layout: Layout, values: Sequence[Any]) -> List[Any]:
    """The values of a chord's tasks in the shape of its members (see :func:`flatten`)."""
    return [assemble(slot, values) if isinstance(slot, list) else values[slot]
            for slot in layout]


def _copy(task: Task) -> Task:
    """Another invocation of ``task``'s pipeline: the same calls and options, new ids."""
    return type(task)(task.args, task.kwargs, eta=task.eta, options=task.options,
                      on_complete=None if task.on_complete is None else _copy(task.on_complete),
                      on_error=None if task.on_error is None else _copy(task.on_error))
