"""Writing tasks: ready or scheduled, with expiry resolved, unique keys claimed, and every task
of one call in one transaction.

Every argument is serialized before anything is written, so a bad argument writes nothing.
In immediate mode, tasks run in the calling process instead of being stored.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
from itertools import repeat
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
)

from . import _accel
from ._gc import cycle_collector_paused
from ._time import seconds
from .result import Result, ResultGroup
from .signals import SIGNAL_ENQUEUED, SIGNAL_SCHEDULED
from .storage.base import EMPTY, retry_conflicts
from .task import Task, fresh_tasks

if TYPE_CHECKING:  # pragma: no cover
    from .api import Queue

__all__ = ['Enqueuer', 'UNIQUE_PREFIX', 'TaskHandle']

T = TypeVar('T')
#: Key prefix of a unique task's key, holding the id of the task that has it.
UNIQUE_PREFIX = 'unique:'
#: What an enqueue returns for one task: its Result, a pipeline's ResultGroup, or None when
#: the queue keeps no results.
TaskHandle = Union[Result[Any], ResultGroup[Any], None]


class Enqueuer:
    """Writes a queue's tasks to its storage."""

    def __init__(self, queue: 'Queue') -> None:
        self.queue = queue

    def enqueue(self, task: Task) -> TaskHandle:
        """Store one task (or run it, in immediate mode); its result handle. With tracing, in
        a PRODUCER span (:mod:`sqlq.tracing`)."""
        task.check_call(task.args, task.kwargs)
        tracing = self.queue.tracing
        if tracing is not None:
            with tracing.sending((task,)):
                return self._enqueue(task)
        return self._enqueue(task)

    def _enqueue(self, task: Task) -> TaskHandle:
        if self.queue.immediate:
            return self.run_immediately(task)
        return self.handle(self.write([task])[0])

    def enqueue_many(self, tasks: Iterable[Task]) -> ResultGroup[Any]:
        """Store several tasks in one transaction (all or none); a ResultGroup of their results
        (with tracing, in one PRODUCER span for them all)."""
        tasks = list(tasks)
        for task in tasks:
            if not isinstance(task, Task):
                raise TypeError('enqueue_many expects Tasks, not %s' % type(task).__name__)
            task.check_call(task.args, task.kwargs)
        tracing = self.queue.tracing
        if tracing is not None:
            with tracing.sending(tasks):
                return self._enqueue_many(tasks)
        return self._enqueue_many(tasks)

    def _enqueue_many(self, tasks: List[Task]) -> ResultGroup[Any]:
        queue = self.queue
        if queue.immediate:
            return ResultGroup([self.run_immediately(t) for t in tasks])  # type: ignore[misc]
        with cycle_collector_paused(len(tasks)):
            return ResultGroup([Result(queue, t) for t in self.write(tasks)])

    def enqueue_calls(self, task_class: Type[Task],
                      calls: Sequence[Tuple[Any, ...]]) -> ResultGroup[Any]:
        """``enqueue_many`` of a ``task_class`` task per argument tuple (a plain ``tuple``) of
        ``calls``, with the class's default options (``map``).

        Such a batch is built, checked and encoded together: its arguments checked once per
        length, its tasks made without a call of ``__init__`` each, its messages encoded with
        one call of the fast path. A batch this cannot take (a unique task, an ``expires``, a
        class with its own ``__init__``, immediate mode, tracing) goes through
        ``enqueue_many``."""
        queue = self.queue
        options = task_class.default_options
        if len(calls) < 2 or queue.immediate or queue.tracing is not None \
                or task_class.unique or options.expires is not None \
                or task_class.__init__ is not Task.__init__:
            return self.enqueue_many([task_class(args, {}) for args in calls])
        tasks = fresh_tasks(task_class, calls, _accel.new_task_ids(len(calls)))
        check = task_class.check_call
        # A call's check depends on its length only (its keywords are none): one per length,
        # in the order of their first call, raises what checking every call would.
        for args in dict(zip(map(len, calls), calls)).values():
            check(args, {})
        datas = queue.task_codec.serialize_fresh(tasks)
        queue.storage.enqueue_many(list(zip(datas, repeat(options.priority or 0))),
                                   [task.id for task in tasks])
        self._signal_enqueued(tasks)
        return ResultGroup([Result(queue, task) for task in tasks])

    def _signal_enqueued(self, tasks: Sequence[Task]) -> None:
        """SIGNAL_ENQUEUED for each of ``tasks``, stored ready (nothing to do without
        receivers)."""
        signals = self.queue.signals
        if signals.has_receivers():
            for task in tasks:
                signals.send(SIGNAL_ENQUEUED, task)

    def handle(self, task: Task) -> TaskHandle:
        """The result handle of an enqueued task (a pipeline's: a ResultGroup of its steps)."""
        queue = self.queue
        if not queue.policy.results:
            return None
        if task.on_complete is not None:
            return ResultGroup([Result(queue, t) for t in task.chain()])
        return Result(queue, task)

    def write(self, tasks: Sequence[Task]) -> List[Task]:
        """Serialize every task first (so a bad argument writes nothing), then store them.

        Returns, per task, the task whose Result the caller gets: itself, or for a unique task
        whose key is taken, the task already holding the key.
        """
        queue = self.queue
        storage, serialize = queue.storage, queue.serialize_task
        if len(tasks) == 1:  # a single call: the producer's hot path
            task = tasks[0]
            if task.eta is None and not task.unique and task.unique_key is None:
                if task.options.expires is not None:
                    self.resolve_expires(task, queue.time.clock())
                storage.enqueue(serialize(task), task.options.priority or 0, task.id)
                if queue.signals.has_receivers():
                    queue.signals.send(SIGNAL_ENQUEUED, task)
                return [task]
        now = queue.time.clock()
        if all(task.eta is None and not task.unique and task.unique_key is None
               for task in tasks):
            # The common case: ready tasks, no unique keys; one storage call.
            for task in tasks:
                if task.options.expires is not None:
                    self.resolve_expires(task, now)
            storage.enqueue_many([(serialize(task), task.options.priority or 0)
                                  for task in tasks], [task.id for task in tasks])
            self._signal_enqueued(tasks)
            return list(tasks)
        encoded: List[Tuple[Task, bytes, Optional[float]]] = []
        for task in tasks:
            self.resolve_expires(task, now)
            if task.unique and task.unique_key is None:
                task.unique_key = self.unique_key(task)
            eta = None if task.eta is None else queue.time.to_timestamp(task.eta)
            encoded.append((task, serialize(task), eta if eta and eta > now else None))

        def write() -> Tuple[List[Task], List[Tuple[Task, Optional[float]]]]:
            handles: List[Task] = []
            written: List[Tuple[Task, Optional[float]]] = []
            ready: List[Tuple[bytes, int]] = []
            keys: List[str] = []
            for task, data, eta in encoded:
                holder = self.claim_unique_key(task)
                if holder is not None:
                    handles.append(holder)
                    continue
                handles.append(task)
                written.append((task, eta))
                if eta is None:
                    ready.append((data, task.options.priority or 0))
                    keys.append(task.id)
                else:
                    storage.add_to_schedule(data, eta, task.id)
            if len(ready) == 1:
                storage.enqueue(ready[0][0], ready[0][1], keys[0])
            elif ready:
                storage.enqueue_many(ready, keys)
            return handles, written

        handles, written = self.atomically(write)
        if queue.signals.has_receivers():
            for task, eta in written:
                queue.signals.send(SIGNAL_ENQUEUED if eta is None else SIGNAL_SCHEDULED, task)
        return handles

    def atomically(self, block: Callable[[], T]) -> T:
        """``block()`` in one storage transaction, run again if the backend reports a
        conflict (optimistic backends apply nothing then)."""
        storage = self.queue.storage

        def run() -> T:
            with storage.transaction():
                return block()

        return retry_conflicts(run)

    # -- unique tasks --------------------------------------------------------------------------
    def unique_key(self, task: Task) -> str:
        """The key of a unique task: its name and a digest of its arguments."""
        digest = hashlib.sha256(self.queue.serializer.dumps_raw(
            (task.args, sorted(task.kwargs.items())))).hexdigest()
        return '%s:%s' % (task.registered_name, digest)

    def claim_unique_key(self, task: Task) -> Optional[Task]:
        """None if ``task`` may be written; else a stand-in for the task holding its key."""
        if task.unique_key is None:
            return None
        storage = self.queue.storage
        key = UNIQUE_PREFIX + task.unique_key
        if storage.put_if_empty(key, task.id.encode('utf8')):
            return None
        holder = storage.peek_data(key)
        if holder is EMPTY:  # expired between the two calls; take it
            storage.put_data(key, task.id.encode('utf8'))
            return None
        return type(task)(task.args, task.kwargs, id=holder.decode('utf8'),
                          unique_key=task.unique_key)

    def release_unique_key(self, task: Task) -> None:
        """Free the unique key ``task`` holds (if it still holds it)."""
        assert task.unique_key is not None
        storage = self.queue.storage
        key = UNIQUE_PREFIX + task.unique_key
        if storage.peek_data(key) == task.id.encode('utf8'):
            storage.delete_data(key)

    # -- expiry and immediate mode -------------------------------------------------------------
    def resolve_expires(self, task: Task, now: float) -> None:
        """Turn the task's ``expires`` into an instant (once)."""
        expires = task.options.expires
        if expires is None or task.expires_resolved is not None:
            return
        queue = self.queue
        if isinstance(expires, _dt.datetime):
            task.expires_resolved = queue.time.datetime(expires.timestamp())
        else:
            task.expires_resolved = queue.time.datetime(now + seconds(expires, 'expires'))

    def run_immediately(self, task: Task) -> TaskHandle:
        """Immediate mode: run ``task`` now (a future one waits in the schedule, as with huey)."""
        queue = self.queue
        if task.eta is not None and queue.time.to_timestamp(task.eta) > queue.time.now():
            self.write([task])
            return self.handle(task)
        self.resolve_expires(task, queue.time.now())
        queue.serialize_task(task)  # the same argument errors as a real enqueue
        handle = self.handle(task)
        if queue.signals.has_receivers():
            queue.signals.send(SIGNAL_ENQUEUED, task)  # as with huey, before it runs
        queue.execute(task)
        return handle
