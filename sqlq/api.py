"""The Queue facade: huey's ``Huey`` surface, delegating each concern to its own module.

A Queue owns one storage backend (bytes only), a serializer, a task registry, the signal
dispatcher and the hooks. Its methods are huey's names; the work is done by

- :mod:`sqlq.enqueue` (writing tasks), :mod:`sqlq.workflows` (group, chord),
- :mod:`sqlq.execution` (the execute state machine), :mod:`sqlq.decisions` (what a run means)
  and :mod:`sqlq.outcomes` (recording it),
- :mod:`sqlq.revocation`, :mod:`sqlq.scheduler`, :mod:`sqlq.locks`, :mod:`sqlq.admin`.

The consumer knows storage only through the Queue and the storage interface.
"""
from __future__ import annotations

import datetime as _dt
import time
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    ContextManager,
    Dict,
    Iterable,
    List,
    Literal,
    Optional,
    Sequence,
    Set,
    Tuple,
    Type,
    TypeVar,
    Union,
    cast,
    overload,
)

from ._time import Delay, QueueTime, Timestamp
from .admin import Admin, FailedTask, RunningTask
from .decisions import Policy, error_metadata
from .delivery import Delivery
from .enqueue import Enqueuer
from .exceptions import ConfigurationError
from .execution import Executor, Guard
from .history import History, HistorySettings, QueueHistory
from .hooks import Hooks, QueueHooks
from .locks import Locks, RateLimit, TaskLock
from .message import MessageCodec
from .outcomes import OutcomeGroup, OutcomeWriter
from .registry import Registry
from .result import Result, ResultGroup
from .revocation import FLAGS_PREFIX, Revocations
from .scheduler import Schedule
from .serializer import Serializer, default_serializer
from .signals import Signals
from .status import StatusReader
from .storage.base import EMPTY, Claim, DeadLetter, Storage
from .storage.memory import MemoryStorage
from .task import PeriodicTask, Task
from .task_codec import TaskCodec
from .tracing import Tracing, TracingSetting, tracing_for
from .workflows import ChordResult, Chords, chord, group
from .wrapper import ArgumentContextDecorator, TaskDecorator, TaskWrapper, within_context

if TYPE_CHECKING:  # pragma: no cover
    from .consumer import Consumer

__all__ = ['Queue', 'group', 'chord', 'ChordResult', 'RunningTask', 'FailedTask', 'EnqueueResult']

T = TypeVar('T')
#: What ``enqueue`` returns: a Result, a ResultGroup (pipeline, group), a ChordResult, or None
#: when the queue keeps no results.
EnqueueResult = Union[Result[Any], ResultGroup[Any], ChordResult, None]


class Queue(QueueHooks, QueueHistory):
    """A task queue on a storage backend; subclasses pick the backend (:mod:`sqlq.queues`).

    Options mirror huey's: ``results`` (store return values), ``store_none`` (store None
    results too), ``utc`` (naive datetimes are UTC), ``immediate`` (run tasks at call time, for
    tests), ``serializer``/``compression``, ``store_intermediate_errors`` (store the error of
    an attempt that will be retried), ``result_ttl`` (seconds after which an unread result
    expires; None keeps results until read), ``quarantine_after`` (a task whose worker died
    that many times while running it becomes a dead letter instead of running again),
    ``history`` (record each finished run, see :mod:`sqlq.history`), ``history_ttl``
    (seconds a run is kept; None: no age limit), ``history_max`` (runs kept at most) and
    ``tracing`` (OpenTelemetry spans: True, or a TracerProvider; see :mod:`sqlq.tracing`).
    Remaining keyword arguments go to the storage backend.
    """

    storage_class: Type[Storage] = MemoryStorage

    def __init__(self, name: str = 'sqlq', results: bool = True, store_none: bool = False,
                 utc: bool = True, immediate: bool = False,
                 serializer: Optional[Serializer] = None, compression: bool = False,
                 use_zlib: bool = False, immediate_use_memory: bool = True,
                 storage_class: Optional[Type[Storage]] = None,
                 store_intermediate_errors: bool = True, result_ttl: Optional[float] = None,
                 quarantine_after: int = 3, history: bool = True,
                 history_ttl: Optional[float] = 86400.0, history_max: Optional[int] = None,
                 clock: Optional[Callable[[], float]] = None, tracing: TracingSetting = False,
                 **storage_kwargs: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError('queue name must be a non-empty str, not %r' % (name,))
        self.name = name
        self.policy = Policy(results, store_none, store_intermediate_errors)
        self.time = QueueTime(clock or time.time, utc)
        if result_ttl is not None and (not isinstance(result_ttl, (int, float))
                                       or result_ttl <= 0):
            raise ConfigurationError('result_ttl must be a positive number of seconds or None, '
                                     'not %r' % (result_ttl,))
        self.result_ttl = result_ttl
        if not isinstance(quarantine_after, int) or quarantine_after < 1:
            raise ConfigurationError('quarantine_after must be a positive int, not %r'
                                     % (quarantine_after,))
        self.quarantine_after = quarantine_after
        self.task_history = History(self, HistorySettings.checked(history, history_ttl,
                                                                  history_max))
        self.statuses = StatusReader(self)
        self.tracing: Optional[Tracing] = tracing_for(tracing, name)
        self.immediate_use_memory = immediate_use_memory
        self.serializer = default_serializer(serializer, compression)
        self.codec = MessageCodec(self.serializer)
        self.registry = Registry()
        self.signals = Signals()
        self.hooks = Hooks()
        if storage_class is not None:
            self.storage_class = storage_class
        self.storage_kwargs = storage_kwargs
        self.storage: Storage = self.create_storage()
        self._regular_storage: Optional[Storage] = None
        self._immediate = False
        self.task_codec = TaskCodec(self)
        self.enqueuer = Enqueuer(self)
        self.chords = Chords(self)
        self.executor = Executor(self)
        self.outcome_writer = OutcomeWriter(self)
        self.revocations = Revocations(self)
        self.scheduling = Schedule(self)
        self.locks = Locks(self)
        self.admin = Admin(self)
        self.immediate = immediate

    def create_storage(self) -> Storage:
        """A new storage backend instance for this queue (its claims tell whether any revoke
        flag exists: see :class:`~sqlq.storage.capabilities.FlagWatch`)."""
        return self.storage_class(name=self.name, clock=self.clock, flag_prefix=FLAGS_PREFIX,
                                  **self.storage_kwargs)

    def close(self) -> None:
        """Close the storage backend (and the immediate-mode one, if any)."""
        if self._regular_storage is not None:
            self._regular_storage.close()
        self.storage.close()

    def __repr__(self) -> str:
        return '<%s %r on %r>' % (type(self).__name__, self.name, self.storage)

    # -- options -------------------------------------------------------------------------------
    def _set_policy(self, **change: bool) -> None:
        self.policy = self.policy._replace(**change)

    results = property(lambda self: self.policy.results,
                       lambda self, v: self._set_policy(results=v), doc='Store return values.')
    store_none = property(lambda self: self.policy.store_none,
                          lambda self, v: self._set_policy(store_none=v),
                          doc='Store None return values too.')
    store_intermediate_errors = property(
        lambda self: self.policy.store_intermediate_errors,
        lambda self, v: self._set_policy(store_intermediate_errors=v),
        doc='Store the error of an attempt that will be retried.')
    utc = property(lambda self: self.time.utc, lambda self, v: setattr(self.time, 'utc', v),
                   doc='Naive datetimes are UTC (else local time).')
    clock = property(lambda self: self.time.clock,
                     lambda self, v: setattr(self.time, 'clock', v),
                     doc="The queue's clock: a callable returning epoch seconds.")

    @property
    def immediate(self) -> bool:
        """When True, calling a task runs it at once in this process (for tests and scripts)."""
        return self._immediate

    @immediate.setter
    def immediate(self, value: bool) -> None:
        value = bool(value)
        if value == self._immediate:
            return
        if self.immediate_use_memory:
            if value:
                self._regular_storage = self.storage
                self.storage = MemoryStorage(name=self.name, clock=self.clock,
                                             flag_prefix=FLAGS_PREFIX)
            elif self._regular_storage is not None:
                self.storage.close()
                self.storage, self._regular_storage = self._regular_storage, None
        self._immediate = value

    def now(self) -> float:
        """The queue's clock, epoch seconds."""
        return self.time.now()

    def resolve_eta(self, eta: Optional[Timestamp],
                    delay: Optional[Delay]) -> Optional[_dt.datetime]:
        """The eta a ``schedule`` call asks for, as a datetime in this queue's convention."""
        return self.time.resolve_eta(eta, delay)

    # -- decorators and registry ---------------------------------------------------------------
    def task(self, *, context: bool = False, name: Optional[str] = None,
             **options: Any) -> TaskDecorator:
        """Decorator turning a function (or an ``async def`` function) into a task; calling it
        then enqueues a call.

        ``options``: the task's default options (``retries``, ``retry_delay``,
        ``retry_backoff``, ``priority``, ``expires``, ``timeout``); other keywords become
        attributes of the task class, as with huey.
        """
        def decorator(func: Callable[..., Any]) -> TaskWrapper[Any, Any]:
            return TaskWrapper(self, func, context=context, name=name, **options)
        return cast(TaskDecorator, decorator)

    def periodic_task(self, validate_datetime: Callable[[_dt.datetime], bool], *,
                      context: bool = False, name: Optional[str] = None,
                      **options: Any) -> TaskDecorator:
        """Decorator for a task the consumer enqueues whenever ``validate_datetime(now)``."""
        if not callable(validate_datetime):
            raise TypeError('periodic_task needs a callable such as crontab(...), not %r'
                            % (validate_datetime,))

        def decorator(func: Callable[..., Any]) -> TaskWrapper[Any, Any]:
            return TaskWrapper(self, func, context=context, name=name, task_base=PeriodicTask,
                               validate_datetime=staticmethod(validate_datetime), **options)
        return cast(TaskDecorator, decorator)

    @overload
    def context_task(self, obj: Any, as_argument: Literal[True], **kwargs: Any
                     ) -> ArgumentContextDecorator: ...

    @overload
    def context_task(self, obj: Any, as_argument: Literal[False] = False, **kwargs: Any
                     ) -> TaskDecorator: ...

    def context_task(self, obj: Any, as_argument: bool = False, **kwargs: Any) -> Any:
        """Like ``task``, running the function inside ``with obj`` (its value first if
        ``as_argument``)."""
        def decorator(func: Callable[..., Any]) -> TaskWrapper[Any, Any]:
            kwargs.setdefault('name', None)
            return self.task(**kwargs)(within_context(func, obj, as_argument))
        return decorator

    def register_task(self, task_class: Type[Task]) -> None:
        self.registry.register(task_class)

    def unregister_task(self, task_class: Type[Task]) -> bool:
        return self.registry.unregister(task_class)

    def registered_task_names(self) -> List[str]:
        return self.registry.names()

    def registered_tasks(self) -> List[Type[Task]]:
        """The task classes this queue knows, by name."""
        return [self.registry.get(name) for name in self.registry.names()]

    # -- messages ------------------------------------------------------------------------------
    def serialize_task(self, task: Task) -> bytes:
        """The bytes stored for ``task``; SerializationError if its arguments can't be stored."""
        return self.task_codec.serialize(task)

    def deserialize_task(self, data: bytes) -> Task:
        """The Task stored as ``data``; DeserializationError or UnknownTaskError if unusable."""
        return self.task_codec.deserialize(data)

    # -- enqueueing ----------------------------------------------------------------------------
    def transaction(self) -> ContextManager[Any]:
        """A block whose enqueues (and, on SQLite, the application's own writes on the yielded
        apsw connection) commit together or not at all."""
        return self.storage.transaction()

    def atomically(self, block: Callable[[], T]) -> T:
        """``block()`` in one storage transaction (run again on an optimistic conflict)."""
        return self.enqueuer.atomically(block)

    def enqueue(self, task: Union[Task, group, chord]) -> EnqueueResult:
        """Store ``task`` (ready, or in the schedule if its eta is in the future).

        Returns a Result (a ResultGroup for a pipeline or group, a ChordResult for a chord;
        None when the queue keeps no results).
        """
        if isinstance(task, Task):  # (neither a group nor a chord)
            return self.enqueuer.enqueue(task)
        if isinstance(task, group):  # (a member chord or group: TypeError)
            return self.enqueue_many(task.tasks)  # type: ignore[arg-type]
        if isinstance(task, chord):
            return self.chords.enqueue(task)
        raise TypeError('enqueue expects a Task, group or chord, not %s' % type(task).__name__)

    def enqueue_many(self, tasks: Iterable[Task]) -> ResultGroup[Any]:
        """Store several tasks in one transaction (all or none); a ResultGroup of their results."""
        return self.enqueuer.enqueue_many(tasks)

    def enqueue_calls(self, task_class: Type[Task],
                      calls: Sequence[Tuple[Any, ...]]) -> ResultGroup[Any]:
        """``enqueue_many`` of one ``task_class`` task per argument tuple of ``calls``, with the
        class's default options: ``TaskWrapper.map``'s batch (built and encoded together). A
        subclass's own ``enqueue_many`` gets the tasks instead."""
        if type(self).enqueue_many is not Queue.enqueue_many:
            return self.enqueue_many([task_class(args, {}) for args in calls])
        return self.enqueuer.enqueue_calls(task_class, calls)

    # -- consuming -----------------------------------------------------------------------------
    def dequeue(self) -> Optional[Task]:
        """Claim the next ready task (highest priority, then oldest), or None.

        The task stays stored, claimed, until ``execute`` records its outcome. A message that
        can't be decoded or names an unknown task is moved to the dead letters (logged).
        """
        return self.executor.dequeue()

    def deliver(self, claim: Claim) -> Optional[Delivery]:
        """The delivery of a claim made by ``storage.dequeue``/``dequeue_many``, ready to run;
        None if the claim was moved to the dead letters instead (quarantined or unusable)."""
        return self.executor.deliver(claim)

    def execute(self, task: Union[Task, Delivery], timestamp: Optional[Timestamp] = None, *,
                guard: Optional[Guard] = None) -> Any:
        """Run ``task`` through the whole state machine and record its outcome.

        Order: not yet due -> schedule; expired -> drop; revoked -> drop; pre-execute hooks
        (CancelExecution cancels); run; store the result or error; retry, continue the
        pipeline or chord; post-execute hooks. The outcome and the release of the task's claim
        commit in one transaction. Returns the task's value (None if it failed: the error is
        logged and stored as the task's result). ``guard(task)``, if given, is a context
        manager entered around the task function alone (the consumer enforces timeouts so).
        """
        return self.executor.execute(task, timestamp, guard)

    def interrupt(self, task: Task) -> None:
        """Give a claimed task that was stopped mid-run back to the queue (SIGNAL_INTERRUPTED)."""
        self.executor.interrupt(self.executor.delivery_of(task))

    def grouping_outcomes(self, group: OutcomeGroup) -> ContextManager[OutcomeGroup]:
        """Within the block, outcomes of claimed tasks executed by this thread are submitted
        to ``group`` (committed by its flushes) instead of committing one by one."""
        return self.outcome_writer.grouping(group)

    def build_error_result(self, task: Task, exception: BaseException) -> Dict[str, Any]:
        """huey's hook: the metadata dict stored for a failed attempt (a subclass may add to
        ``super().build_error_result(task, exception)``); ``TaskException.metadata``."""
        return error_metadata(task, exception)

    def create_consumer(self, **options: Any) -> 'Consumer':
        """A Consumer running this queue's tasks (see ``sqlq.consumer.Consumer``).

        The one import of the consumer layer by the facade, made when called: huey users
        create consumers this way.
        """
        from .consumer import Consumer
        return Consumer(self, **options)

    # -- scheduling ----------------------------------------------------------------------------
    def ready_to_run(self, task: Task, timestamp: Optional[Timestamp] = None) -> bool:
        """True if the task has no eta or its eta has come."""
        return task.eta is None or \
            self.time.to_timestamp(task.eta) <= self.time.timestamp(timestamp)

    def add_schedule(self, task: Task) -> None:
        """Put ``task`` in the schedule for its eta."""
        self.scheduling.add(task)

    def read_schedule(self, timestamp: Optional[Timestamp] = None) -> List[Task]:
        """Remove and return the scheduled tasks due at ``timestamp`` (now by default)."""
        return self.scheduling.read(timestamp)

    def read_periodic(self, timestamp: _dt.datetime) -> List[Task]:
        """New instances of the periodic tasks whose ``validate_datetime(timestamp)`` is True."""
        return self.scheduling.periodic_due(timestamp)

    def enqueue_due(self, timestamp: Optional[Timestamp] = None) -> List[Task]:
        """Move scheduled tasks whose eta has come to the ready queue (in transactions of at
        most ``scheduling.chunk`` tasks, until none is due)."""
        return self.scheduling.enqueue_due(timestamp)

    def enqueue_periodic(self, minute: float) -> List[Task]:
        """Enqueue the periodic tasks due in the minute starting at epoch ``minute``, each
        at most once however many consumers call this for that minute."""
        return self.scheduling.enqueue_periodic(minute)

    def next_scheduled_time(self) -> Optional[float]:
        """Epoch seconds of the earliest scheduled task, or None."""
        return self.storage.next_scheduled_time()

    # -- revocation ----------------------------------------------------------------------------
    def revoke(self, task: Any, revoke_until: Optional[Timestamp] = None,
               revoke_once: bool = False) -> None:
        """Skip ``task`` when it comes up (until ``revoke_until``; only once if ``revoke_once``)."""
        self.revocations.revoke(self.revocations.key(task), revoke_until, revoke_once)

    def restore(self, task: Any) -> bool:
        """Undo ``revoke``; True if the task was revoked."""
        return self.revocations.restore(self.revocations.key(task))

    def revoke_by_id(self, id: str, revoke_until: Optional[Timestamp] = None,
                     revoke_once: bool = False) -> None:
        self.revocations.revoke(self.revocations.key(id), revoke_until, revoke_once)

    def restore_by_id(self, id: str) -> bool:
        return self.revocations.restore(self.revocations.key(id))

    def revoke_all(self, task_class: Any, revoke_until: Optional[Timestamp] = None,
                   revoke_once: bool = False) -> None:
        """Revoke every invocation of a task class (or TaskWrapper)."""
        self.revocations.revoke(self.revocations.key(task_class), revoke_until, revoke_once)

    def restore_all(self, task_class: Any) -> bool:
        return self.revocations.restore(self.revocations.key(task_class))

    def is_revoked(self, task: Any, timestamp: Optional[Timestamp] = None,
                   peek: bool = True) -> bool:
        """Whether a task (instance, Result, class, wrapper or id) is revoked at ``timestamp``."""
        return self.revocations.is_revoked(task, self.time.timestamp(timestamp), peek)

    def reschedule(self, task: Task, eta: Optional[Timestamp] = None,
                   delay: Optional[Delay] = None, expires: Any = None,
                   priority: Optional[int] = None,
                   preserve_pipeline: bool = True) -> EnqueueResult:
        """Revoke ``task`` once and enqueue a copy with a new id at ``eta``/after ``delay``."""
        return self.revocations.reschedule(task, eta, delay, expires, priority,
                                           preserve_pipeline)

    # -- locks and rate limits -----------------------------------------------------------------
    def lock_task(self, lock_name: str, ttl: Optional[float] = None) -> TaskLock:
        """A lock usable as decorator or context manager (``ttl`` frees a crashed holder's lock)."""
        return self.locks.lock(lock_name, ttl)

    def is_locked(self, lock_name: str) -> bool:
        return TaskLock(self, lock_name).is_locked()

    def flush_locks(self, *names: str) -> Set[str]:
        """Release the named locks, or every lock when no names are given; returns the names
        of the released locks known to this process."""
        return self.locks.flush(*names)

    def rate_limit(self, name: str, limit: int, per: float, retry: bool = True) -> RateLimit:
        """At most ``limit`` runs per ``per`` seconds of what it decorates, across processes."""
        return RateLimit(self, name, limit, per, retry)

    # -- key/value -----------------------------------------------------------------------------
    def put(self, key: str, data: Any) -> None:
        self.storage.put_data(key, self.serializer.serialize(data))

    def put_result(self, key: str, data: Any) -> None:
        self.storage.put_data(key, self.serializer.serialize(data), is_result=True,
                              ttl=self.result_ttl)

    def put_if_empty(self, key: str, data: Any, ttl: Optional[float] = None) -> bool:
        return self.storage.put_if_empty(key, self.serializer.serialize(data), ttl)

    def get_raw(self, key: str, peek: bool = False) -> Any:
        """The value under ``key`` (EMPTY if none); read destructively unless ``peek``."""
        raw = self.storage.peek_data(key) if peek else self.storage.pop_data(key)
        return raw if raw is EMPTY else self.serializer.deserialize(raw)

    def get(self, key: str, peek: bool = False) -> Any:
        """The value under ``key`` (None if none); read destructively unless ``peek``."""
        value = self.get_raw(key, peek)
        return None if value is EMPTY else value

    def delete(self, key: str) -> bool:
        return self.storage.delete_data(key)

    def has_result(self, key: str) -> bool:
        return self.storage.has_data_for_key(key)

    def result(self, id: str, blocking: bool = False, timeout: Optional[float] = None,
               backoff: float = 1.15, max_delay: float = 1.0, revoke_on_timeout: bool = False,
               preserve: bool = False) -> Any:
        """The result of the task with ``id`` (see Result.get)."""
        return Result(self, Task(id=id)).get(blocking, timeout, backoff, max_delay,
                                             revoke_on_timeout, preserve)

    def wait_for_change(self, timeout: float, topic: Optional[str] = None) -> bool:
        """Block up to ``timeout`` seconds until another writer may have committed (something
        of ``topic``: 'queue', 'schedule' or 'data'; see Storage.wait_for_change)."""
        return self.storage.wait_for_change(timeout, topic)

    # -- inspection and operations -------------------------------------------------------------
    def pending(self, limit: Optional[int] = None, offset: int = 0) -> List[Task]:
        """Ready tasks in the order they will run (``limit`` from ``offset`` on)."""
        return self.admin.pending(limit, offset)

    def pending_count(self) -> int:
        return self.storage.queue_size()

    def running_count(self) -> int:
        """Tasks claimed by a worker and not finished."""
        return self.storage.claimed_size()

    def scheduled(self, limit: Optional[int] = None, offset: int = 0) -> List[Task]:
        """Tasks waiting for their eta, soonest first."""
        return self.admin.scheduled(limit, offset)

    def scheduled_count(self) -> int:
        return self.storage.schedule_size()

    def result_count(self) -> int:
        """Stored results (not revoke flags, locks or other keys)."""
        return self.storage.result_store_size()

    def all_results(self) -> Dict[str, Any]:
        return self.admin.all_results()

    def running(self) -> List[RunningTask]:
        """Tasks claimed by workers, oldest claim first, with their owners."""
        return self.admin.running()

    def failed(self, limit: Optional[int] = None, offset: int = 0) -> List[FailedTask]:
        """Tasks that failed for good (dead letters), oldest first; ``task`` is None for a
        message that cannot be decoded."""
        return self.admin.failed(limit, offset)

    def requeue_failed(self, ids: Optional[Iterable[int]] = None) -> int:
        """Put failed tasks (all, or those dead-letter ids) back in the queue."""
        return self.storage.requeue_dead_letters(None if ids is None else list(ids))

    def purge_failed(self, ids: Optional[Iterable[int]] = None) -> int:
        """Delete failed tasks (all, or those dead-letter ids)."""
        return self.storage.purge_dead_letters(None if ids is None else list(ids))

    def recover_claims(self) -> int:
        """Return tasks claimed by dead workers/consumers to the queue; how many."""
        return self.admin.recover_claims()

    def heartbeat(self) -> None:
        """Record that this process (an owner of claims) is alive."""
        self.storage.heartbeat()

    def maintenance(self) -> Dict[str, Any]:
        """Checkpoint the WAL, reclaim some free pages, drop expired results and locks, and
        prune the history."""
        done = self.storage.maintenance()
        done['history_pruned'] = self.task_history.prune()
        return done

    def vacuum(self) -> None:
        """Rebuild the database file to its minimal size (blocks other writers meanwhile)."""
        self.storage.vacuum()

    def stats(self) -> Dict[str, Any]:
        """Counts (pending, scheduled, running, results, failed) and database sizes."""
        return self.admin.stats()

    def dead_letters(self, limit: Optional[int] = None) -> List[DeadLetter]:
        """Messages that could not be run (undecodable, unknown task), oldest first."""
        return self.storage.dead_letters(limit)

    def dead_letter_count(self) -> int:
        return self.storage.dead_letter_count()

    def flush(self) -> None:
        """Delete everything of this queue: tasks, schedule, results, keys, dead letters."""
        self.storage.flush_all()

    def __len__(self) -> int:
        return self.pending_count()
