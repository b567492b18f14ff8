"""The Queue facade: decorators, enqueueing, and the execute state machine.

A Queue owns one storage backend (bytes only), a serializer, a task registry and the signal
dispatcher. Everything a producer or a consumer does goes through it; the consumer knows
storage only through the Queue and the storage interface.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import logging
import threading
import time
import traceback
from collections import OrderedDict
from typing import (TYPE_CHECKING, Any, Callable, ContextManager, Dict, Iterable, Iterator, List,
                    NamedTuple, Optional, Sequence, Tuple, Type, TypeVar, Union)

from ._time import from_timestamp, seconds, to_timestamp
from .exceptions import (CancelExecution, ConfigurationError, DeserializationError,
                         RateLimitExceeded, RetryTask, SerializationError, TaskLockedException,
                         TaskTimeout, UnknownTaskError)
from .locks import LOCK_PREFIX, RateLimit, TaskLock
from .message import Message, MessageCodec
from .outcomes import OutcomeGroup, StaleClaim, commit_outcome
from .registry import Registry
from .result import SKIPPED, Error, Result, ResultGroup
from .serializer import Serializer, default_serializer
from .signals import (SIGNAL_CANCELED, SIGNAL_COMPLETE, SIGNAL_ENQUEUED, SIGNAL_ERROR,
                      SIGNAL_EXECUTING, SIGNAL_EXPIRED, SIGNAL_INTERRUPTED, SIGNAL_LOCKED,
                      SIGNAL_RATE_LIMITED,
                      SIGNAL_RETRYING, SIGNAL_REVOKED, SIGNAL_SCHEDULED, SIGNAL_TIMEOUT, Signals)
from .storage.base import EMPTY, Claim, DeadLetter, Storage, retry_conflicts
from .storage.memory import MemoryStorage
from .task import PeriodicTask, Task, TaskWrapper, cycle_collector_paused, validate_options

if TYPE_CHECKING:  # pragma: no cover
    from .consumer import Consumer

logger = logging.getLogger('sqlq')

REVOKE_PREFIX = 'revoke:'
REVOKE_CLASS_PREFIX = 'revoke-all:'
CHORD_PREFIX = 'chord:'
UNIQUE_PREFIX = 'unique:'
PERIODIC_PREFIX = 'periodic:'
PERIODIC_MARK_TTL = 7200.0
# A revocation made this long (seconds) before a claimed task starts may go unseen: a worker
# reads the revoke flags of a batch of claims at once and trusts them for this long.
REVOKE_PREFETCH_TTL = 0.05

Timestamp = Union[_dt.datetime, int, float]
_T = TypeVar('_T')


def _ignore_settled(then: Optional[Callable[[], None]]) -> Optional[Callable[[bool], None]]:
    return None if then is None else (lambda applied: then())


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


EnqueueResult = Union[Result, ResultGroup, ChordResult, None]


class Queue:
    """A task queue on a storage backend; subclasses pick the backend (SqliteQueue, MemoryQueue).

    Options mirror huey's: ``results`` (store return values), ``store_none`` (store None
    results too), ``utc`` (naive datetimes are UTC), ``immediate`` (run tasks at call time, for
    tests), ``serializer``/``compression``, ``store_intermediate_errors`` (store the error of
    an attempt that will be retried), ``result_ttl`` (seconds after which an unread result
    expires; None keeps results until read), ``quarantine_after`` (a task whose worker died
    that many times while running it becomes a dead letter instead of running again).
    Remaining keyword arguments go to the storage backend.
    """

    storage_class: Type[Storage] = MemoryStorage

    def __init__(self, name: str = 'sqlq', results: bool = True, store_none: bool = False,
                 utc: bool = True, immediate: bool = False,
                 serializer: Optional[Serializer] = None, compression: bool = False,
                 use_zlib: bool = False, immediate_use_memory: bool = True,
                 storage_class: Optional[Type[Storage]] = None,
                 store_intermediate_errors: bool = True, result_ttl: Optional[float] = None,
                 quarantine_after: int = 3,
                 clock: Optional[Callable[[], float]] = None, **storage_kwargs: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError('queue name must be a non-empty str, not %r' % (name,))
        self.name = name
        self.results = results
        self.store_none = store_none
        self.utc = utc
        self.store_intermediate_errors = store_intermediate_errors
        if result_ttl is not None and (not isinstance(result_ttl, (int, float))
                                       or result_ttl <= 0):
            raise ConfigurationError('result_ttl must be a positive number of seconds or None, '
                                     'not %r' % (result_ttl,))
        self.result_ttl = result_ttl
        if not isinstance(quarantine_after, int) or quarantine_after < 1:
            raise ConfigurationError('quarantine_after must be a positive int, not %r'
                                     % (quarantine_after,))
        self.quarantine_after = quarantine_after
        self.immediate_use_memory = immediate_use_memory
        self.serializer = default_serializer(serializer, compression)
        self.codec = MessageCodec(self.serializer)
        self.registry = Registry()
        self.signals = Signals()
        self.clock: Callable[[], float] = clock or time.time
        if storage_class is not None:
            self.storage_class = storage_class
        self.storage_kwargs = storage_kwargs
        self.storage: Storage = self.create_storage()
        self._regular_storage: Optional[Storage] = None
        self._immediate = False
        self._local = threading.local()  # per thread: the worker's OutcomeGroup, if any
        self._locks: set = set()
        self._pre_execute: Dict[str, Callable[..., Any]] = OrderedDict()
        self._post_execute: Dict[str, Callable[..., Any]] = OrderedDict()
        self._startup: Dict[str, Callable[..., Any]] = OrderedDict()
        self._shutdown: Dict[str, Callable[..., Any]] = OrderedDict()
        self.immediate = immediate

    def create_storage(self) -> Storage:
        """A new storage backend instance for this queue."""
        return self.storage_class(name=self.name, clock=self.clock, **self.storage_kwargs)

    def close(self) -> None:
        """Close the storage backend (and the immediate-mode one, if any)."""
        if self._regular_storage is not None:
            self._regular_storage.close()
        self.storage.close()

    def __repr__(self) -> str:
        return '<%s %r on %r>' % (type(self).__name__, self.name, self.storage)

    # -- immediate mode ------------------------------------------------------------------------
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
                self.storage = MemoryStorage(name=self.name, clock=self.clock)
            elif self._regular_storage is not None:
                self.storage.close()
                self.storage, self._regular_storage = self._regular_storage, None
        self._immediate = value

    # -- time ----------------------------------------------------------------------------------
    def now(self) -> float:
        """The queue's clock, epoch seconds."""
        return self.clock()

    def _timestamp(self, value: Optional[Timestamp]) -> float:
        if value is None:
            return self.clock()
        if isinstance(value, _dt.datetime):
            return to_timestamp(value, self.utc)
        return seconds(value, 'timestamp')

    def _datetime(self, ts: Optional[float]) -> Optional[_dt.datetime]:
        return from_timestamp(ts, self.utc)

    def resolve_eta(self, eta: Union[_dt.datetime, int, float, None],
                    delay: Union[int, float, _dt.timedelta, None]) -> Optional[_dt.datetime]:
        """The eta a ``schedule`` call asks for, as a datetime in this queue's convention.

        As with huey, a naive ``eta`` is the caller's local time; numbers are epoch seconds.
        """
        if eta is not None and delay is not None:
            raise ValueError('give eta or delay, not both')
        if delay is not None:
            return self._datetime(self.clock() + seconds(delay, 'delay'))
        if eta is None:
            return None
        if isinstance(eta, _dt.datetime):
            return self._datetime(eta.timestamp())  # naive: local time; aware: exact
        if isinstance(eta, (int, float)) and not isinstance(eta, bool):
            return self._datetime(float(eta))
        raise TypeError('eta must be a datetime or epoch seconds, not %s' % type(eta).__name__)

    # -- decorators ----------------------------------------------------------------------------
    def task(self, retries: int = 0, retry_delay: float = 0, retry_backoff: float = 0,
             priority: Optional[int] = None, context: bool = False, name: Optional[str] = None,
             expires: Any = None, timeout: Optional[float] = None,
             **kwargs: Any) -> Callable[[Callable[..., Any]], TaskWrapper]:
        """Decorator turning a function into a task; calling it then enqueues a call."""
        def decorator(func: Callable[..., Any]) -> TaskWrapper:
            return TaskWrapper(self, func, context=context, name=name, retries=retries,
                               retry_delay=retry_delay, retry_backoff=retry_backoff,
                               priority=priority, expires=expires, timeout=timeout, **kwargs)
        return decorator

    def periodic_task(self, validate_datetime: Callable[[_dt.datetime], bool],
                      retries: int = 0, retry_delay: float = 0, retry_backoff: float = 0,
                      priority: Optional[int] = None, context: bool = False,
                      name: Optional[str] = None, expires: Any = None,
                      timeout: Optional[float] = None,
                      **kwargs: Any) -> Callable[[Callable[..., Any]], TaskWrapper]:
        """Decorator for a task the consumer enqueues whenever ``validate_datetime(now)``."""
        if not callable(validate_datetime):
            raise TypeError('periodic_task needs a callable such as crontab(...), not %r'
                            % (validate_datetime,))

        def decorator(func: Callable[..., Any]) -> TaskWrapper:
            return TaskWrapper(self, func, context=context, name=name, task_base=PeriodicTask,
                               retries=retries, retry_delay=retry_delay,
                               retry_backoff=retry_backoff, priority=priority, expires=expires,
                               timeout=timeout, validate_datetime=staticmethod(validate_datetime),
                               **kwargs)
        return decorator

    def context_task(self, obj: Any, as_argument: bool = False,
                     **kwargs: Any) -> Callable[[Callable[..., Any]], TaskWrapper]:
        """Like ``task``, running the function inside ``with obj`` (its value first if
        ``as_argument``)."""
        def decorator(func: Callable[..., Any]) -> TaskWrapper:
            import functools

            @functools.wraps(func)
            def inner(*args: Any, **kw: Any) -> Any:
                with obj as ctx:
                    if as_argument:
                        return func(ctx, *args, **kw)
                    return func(*args, **kw)
            if as_argument:
                # Callers don't pass the context value: check calls against the rest.
                import inspect
                try:
                    sig = inspect.signature(func)
                    params = list(sig.parameters.values())[1:]
                    inner.__signature__ = sig.replace(parameters=params)  # type: ignore
                except (TypeError, ValueError):
                    pass
            kwargs.setdefault('name', None)
            return self.task(**kwargs)(inner)
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

    # -- signals and hooks ---------------------------------------------------------------------
    def signal(self, *signals: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator connecting ``receiver(signal, task, *extra)`` to ``signals`` (all if none)."""
        def decorator(receiver: Callable[..., Any]) -> Callable[..., Any]:
            self.signals.connect(receiver, *signals)
            return receiver
        return decorator

    def disconnect_signal(self, receiver: Callable[..., Any], *signals: str) -> None:
        self.signals.disconnect(receiver, *signals)

    def _emit(self, signal: str, task: Task, *extra: Any) -> None:
        self.signals.send(signal, task, *extra)

    @staticmethod
    def _hook_decorator(registry: Dict[str, Callable[..., Any]],
                        name: Optional[str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
            registry[name or fn.__name__] = fn
            return fn
        return decorator

    @staticmethod
    def _unregister_hook(registry: Dict[str, Callable[..., Any]], name: Any) -> bool:
        key = name if isinstance(name, str) else getattr(name, '__name__', None)
        return registry.pop(key, None) is not None

    def pre_execute(self, name: Optional[str] = None) -> Callable[..., Any]:
        """Decorator for ``hook(task)`` run before each task; CancelExecution cancels it."""
        return self._hook_decorator(self._pre_execute, name)

    def post_execute(self, name: Optional[str] = None) -> Callable[..., Any]:
        """Decorator for ``hook(task, task_value, exception)`` run after each task."""
        return self._hook_decorator(self._post_execute, name)

    def on_startup(self, name: Optional[str] = None) -> Callable[..., Any]:
        """Decorator for ``hook()`` run when each consumer worker starts."""
        return self._hook_decorator(self._startup, name)

    def on_shutdown(self, name: Optional[str] = None) -> Callable[..., Any]:
        """Decorator for ``hook()`` run when each consumer worker stops."""
        return self._hook_decorator(self._shutdown, name)

    def register_pre_execute(self, name: str, fn: Callable[..., Any]) -> None:
        self._pre_execute[name] = fn

    def register_post_execute(self, name: str, fn: Callable[..., Any]) -> None:
        self._post_execute[name] = fn

    def register_on_startup(self, name: str, fn: Callable[..., Any]) -> None:
        self._startup[name] = fn

    def register_on_shutdown(self, name: str, fn: Callable[..., Any]) -> None:
        self._shutdown[name] = fn

    def unregister_pre_execute(self, name: Any) -> bool:
        return self._unregister_hook(self._pre_execute, name)

    def unregister_post_execute(self, name: Any) -> bool:
        return self._unregister_hook(self._post_execute, name)

    def unregister_on_startup(self, name: Any) -> bool:
        return self._unregister_hook(self._startup, name)

    def unregister_on_shutdown(self, name: Any) -> bool:
        return self._unregister_hook(self._shutdown, name)

    def run_startup_hooks(self) -> None:
        self._run_hooks(self._startup, 'startup')

    def run_shutdown_hooks(self) -> None:
        self._run_hooks(self._shutdown, 'shutdown')

    @staticmethod
    def _run_hooks(hooks: Dict[str, Callable[..., Any]], kind: str, *args: Any) -> None:
        for name, hook in list(hooks.items()):
            try:
                hook(*args)
            except Exception:
                logger.exception('%s hook %s failed', kind, name)

    # -- messages ------------------------------------------------------------------------------
    def _message(self, task: Task) -> Message:
        extra: Optional[Dict[str, Any]] = None
        if task.expires is not None and task.expires_resolved is None:
            extra = {'expires': task.expires}
        if task.chord_config is not None:
            extra = dict(extra or (), chord=task.chord_config)
        if task.unique_key is not None:
            extra = dict(extra or (), unique=task.unique_key)
        return Message(
            task.id, task.name, task.args, task.kwargs, task.priority or 0, task.retries,
            task.retry_delay, task.retry_backoff or 0.0,
            None if task.eta is None else to_timestamp(task.eta, self.utc),
            None if task.expires_resolved is None else to_timestamp(task.expires_resolved,
                                                                    self.utc),
            task.timeout,
            None if task.on_complete is None else self._message(task.on_complete),
            None if task.on_error is None else self._message(task.on_error),
            extra)

    def _task(self, message: Message) -> Task:
        task_class = self.registry.get(message.name)
        extra = message.extra or {}
        return task_class(
            message.args, message.kwargs, id=message.id, eta=self._datetime(message.eta),
            retries=message.retries, retry_delay=message.retry_delay,
            priority=message.priority or None, expires=extra.get('expires'),
            on_complete=None if message.on_complete is None else self._task(message.on_complete),
            on_error=None if message.on_error is None else self._task(message.on_error),
            expires_resolved=self._datetime(message.expires_at), timeout=message.timeout,
            chord_config=extra.get('chord'), retry_backoff=message.retry_backoff,
            unique_key=extra.get('unique'))

    def serialize_task(self, task: Task) -> bytes:
        """The bytes stored for ``task``; SerializationError if its arguments can't be stored."""
        if task.on_complete is None and task.on_error is None and task.chord_config is None \
                and task.unique_key is None and (task.expires is None
                                                 or task.expires_resolved is not None):
            # No nested messages and no extra fields: skip building a Message.
            return self.codec.encode_fields(
                task.id, task.name, task.args, task.kwargs, task.priority or 0, task.retries,
                task.retry_delay, task.retry_backoff or 0.0,
                None if task.eta is None else to_timestamp(task.eta, self.utc),
                None if task.expires_resolved is None else to_timestamp(task.expires_resolved,
                                                                        self.utc),
                task.timeout)
        return self.codec.encode(self._message(task))

    def deserialize_task(self, data: bytes) -> Task:
        """The Task stored as ``data``; DeserializationError or UnknownTaskError if unusable."""
        return self._task(self.codec.decode(data))

    # -- enqueueing ----------------------------------------------------------------------------
    def transaction(self) -> ContextManager[Any]:
        """A block whose enqueues (and, on SQLite, the application's own writes on the yielded
        apsw connection) commit together or not at all."""
        return self.storage.transaction()

    def enqueue(self, task: Union[Task, group, chord]) -> EnqueueResult:
        """Store ``task`` (ready, or in the schedule if its eta is in the future).

        Returns a Result (a ResultGroup for a pipeline or group, a ChordResult for a chord;
        None when the queue keeps no results).
        """
        if isinstance(task, group):
            return self.enqueue_many(task.tasks)
        if isinstance(task, chord):
            return self._enqueue_chord(task)
        if not isinstance(task, Task):
            raise TypeError('enqueue expects a Task, group or chord, not %s'
                            % type(task).__name__)
        task.check_call(task.args, task.kwargs)
        if self._immediate:
            return self._run_immediately(task)
        return self._handle(self._write([task])[0])

    def enqueue_many(self, tasks: Iterable[Task]) -> ResultGroup:
        """Store several tasks in one transaction (all or none); a ResultGroup of their results."""
        tasks = list(tasks)
        for task in tasks:
            if not isinstance(task, Task):
                raise TypeError('enqueue_many expects Tasks, not %s' % type(task).__name__)
            task.check_call(task.args, task.kwargs)
        if self._immediate:
            return ResultGroup([self._run_immediately(t) for t in tasks])
        with cycle_collector_paused(len(tasks)):
            return ResultGroup([Result(self, t) for t in self._write(tasks)])

    def _handle(self, task: Task) -> Union[Result, ResultGroup, None]:
        if not self.results:
            return None
        if task.on_complete is not None:
            return ResultGroup([Result(self, t) for t in task.chain()])
        return Result(self, task)

    def _write(self, tasks: Sequence[Task]) -> List[Task]:
        """Serialize every task first (so a bad argument writes nothing), then store them.

        Returns, per task, the task whose Result the caller gets: itself, or for a unique task
        whose key is taken, the task already holding the key.
        """
        now = self.clock()
        if all(task.eta is None and not task.unique and task.unique_key is None
               for task in tasks):
            # The common case: ready tasks, no unique keys; one storage call.
            for task in tasks:
                if task.expires is not None:
                    self._resolve_expires(task, now)
            if len(tasks) == 1:
                self.storage.enqueue(self.serialize_task(tasks[0]), tasks[0].priority or 0)
            else:
                serialize = self.serialize_task
                self.storage.enqueue_many([(serialize(task), task.priority or 0)
                                           for task in tasks])
            if self.signals.has_receivers():
                for task in tasks:
                    self._emit(SIGNAL_ENQUEUED, task)
            return list(tasks)
        encoded: List[Tuple[Task, bytes, Optional[float]]] = []
        for task in tasks:
            self._resolve_expires(task, now)
            if task.unique and task.unique_key is None:
                task.unique_key = self._unique_key(task)
            eta = None if task.eta is None else to_timestamp(task.eta, self.utc)
            encoded.append((task, self.serialize_task(task), eta if eta and eta > now else None))
        def write() -> Tuple[List[Task], List[Tuple[Task, Optional[float]]]]:
            handles: List[Task] = []
            written: List[Tuple[Task, Optional[float]]] = []
            ready: List[Tuple[bytes, int]] = []
            for task, data, eta in encoded:
                holder = self._claim_unique_key(task)
                if holder is not None:
                    handles.append(holder)
                    continue
                handles.append(task)
                written.append((task, eta))
                if eta is None:
                    ready.append((data, task.priority or 0))
                else:
                    self.storage.add_to_schedule(data, eta)
            if len(ready) == 1:
                self.storage.enqueue(*ready[0])
            elif ready:
                self.storage.enqueue_many(ready)
            return handles, written

        handles, written = self._atomically(write)
        if self.signals.has_receivers():
            for task, eta in written:
                self._emit(SIGNAL_ENQUEUED if eta is None else SIGNAL_SCHEDULED, task)
        return handles

    def _atomically(self, block: Callable[[], _T]) -> _T:
        """``block()`` in one storage transaction, run again if the backend reports a
        conflict (optimistic backends apply nothing then)."""
        storage = self.storage

        def run() -> _T:
            with storage.transaction():
                return block()

        return retry_conflicts(run)

    def _unique_key(self, task: Task) -> str:
        digest = hashlib.sha256(self.serializer.dumps_raw(
            (task.args, sorted(task.kwargs.items())))).hexdigest()
        return '%s:%s' % (task.name, digest)

    def _claim_unique_key(self, task: Task) -> Optional[Task]:
        """None if ``task`` may be written; else a stand-in for the task holding its key."""
        if task.unique_key is None:
            return None
        key = UNIQUE_PREFIX + task.unique_key
        if self.storage.put_if_empty(key, task.id.encode('utf8')):
            return None
        holder = self.storage.peek_data(key)
        if holder is EMPTY:  # expired between the two calls; take it
            self.storage.put_data(key, task.id.encode('utf8'))
            return None
        return type(task)(task.args, task.kwargs, id=holder.decode('utf8'),
                          unique_key=task.unique_key)

    def _release_unique_key(self, task: Task) -> None:
        key = UNIQUE_PREFIX + task.unique_key
        if self.storage.peek_data(key) == task.id.encode('utf8'):
            self.storage.delete_data(key)

    def _resolve_expires(self, task: Task, now: float) -> None:
        if task.expires is None or task.expires_resolved is not None:
            return
        if isinstance(task.expires, _dt.datetime):
            task.expires_resolved = self._datetime(task.expires.timestamp())
        else:
            task.expires_resolved = self._datetime(now + seconds(task.expires, 'expires'))

    def _run_immediately(self, task: Task) -> Union[Result, ResultGroup, None]:
        if task.eta is not None and to_timestamp(task.eta, self.utc) > self.clock():
            self._write([task])  # as with huey, a future task waits in the schedule
            return self._handle(task)
        self._resolve_expires(task, self.clock())
        self.serialize_task(task)  # the same argument errors as a real enqueue
        handle = self._handle(task)
        self.execute(task)
        return handle

    def _enqueue_chord(self, spec: chord) -> ChordResult:
        import uuid
        chord_id = str(uuid.uuid4())
        callback_data = self.serialize_task(spec.callback)
        for index, task in enumerate(spec.tasks):
            task.chord_config = {'id': chord_id, 'index': index, 'size': len(spec.tasks)}
        def write() -> ResultGroup:
            self.storage.put_data(CHORD_PREFIX + chord_id, callback_data)
            return self.enqueue_many(spec.tasks)

        members = self._atomically(write)
        return ChordResult(members, Result(self, spec.callback))

    # -- consuming -----------------------------------------------------------------------------
    def dequeue(self) -> Optional[Task]:
        """Claim the next ready task (highest priority, then oldest), or None.

        The task stays stored, claimed, until ``execute`` records its outcome. A message that
        can't be decoded or names an unknown task is moved to the dead letters (logged).
        """
        while True:
            claim = self.storage.dequeue()
            if claim is None:
                return None
            task = self.claimed_task(claim)
            if task is not None:
                return task

    def claimed_task(self, claim: Claim) -> Optional[Task]:
        """The Task of a claim made by ``storage.dequeue``/``dequeue_many``, ready to execute;
        None if the claim was moved to the dead letters instead (quarantined or unusable)."""
        if claim.recoveries >= self.quarantine_after:
            reason = ('quarantined: its worker died %d times while running it (the task '
                      'may crash or kill the process that runs it)' % claim.recoveries)
            logger.error('task moved to dead letters: %s', reason)
            self.storage.bury(claim.receipt, reason)
            return None
        try:
            task = self.deserialize_task(claim.data)
        except (DeserializationError, UnknownTaskError) as exc:
            reason = '%s: %s' % (type(exc).__name__, exc)
            logger.error('unusable message moved to dead letters: %s', reason)
            self.storage.bury(claim.receipt, reason)
            return None
        task.attempts = claim.attempts
        if task.at_most_once:
            self.storage.ack(claim.receipt)  # gone before it runs: never run twice
        else:
            task.receipt = claim.receipt
        return task

    @contextlib.contextmanager
    def grouping_outcomes(self, group: OutcomeGroup) -> Iterator[OutcomeGroup]:
        """Within the block, outcomes of claimed tasks executed by this thread are submitted
        to ``group`` (committed by its flushes) instead of committing one by one."""
        previous = getattr(self._local, 'outcomes', None)
        self._local.outcomes = group
        try:
            yield group
        finally:
            self._local.outcomes = previous

    def interrupt(self, task: Task) -> None:
        """Give a claimed task that was stopped mid-run back to the queue (SIGNAL_INTERRUPTED)."""
        if task.receipt is not None:
            self.storage.release(task.receipt)
            task.receipt = None
        self._emit(SIGNAL_INTERRUPTED, task)

    def enqueue_due(self, timestamp: Optional[Timestamp] = None) -> List[Task]:
        """Move scheduled tasks whose eta has come to the ready queue, in one transaction."""
        def move() -> List[Task]:
            due = self.read_schedule(timestamp)
            if due:
                self.storage.enqueue_many(
                    [(self.serialize_task(t), t.priority or 0) for t in due])
            return due

        tasks = self._atomically(move)
        if self.signals.has_receivers():
            for task in tasks:
                self._emit(SIGNAL_ENQUEUED, task)
        return tasks

    def enqueue_periodic(self, minute: float) -> List[Task]:
        """Enqueue the periodic tasks due in the minute starting at epoch ``minute``, each
        at most once however many consumers call this for that minute."""
        due = self.read_periodic(self._datetime(minute))
        def fire() -> List[Task]:
            fired = []
            for task in due:
                key = '%s%s:%d' % (PERIODIC_PREFIX, task.name, int(minute))
                if self.storage.put_if_empty(key, b'1', ttl=PERIODIC_MARK_TTL):
                    self.storage.enqueue(self.serialize_task(task), task.priority or 0)
                    fired.append(task)
            return fired

        fired = self._atomically(fire)
        if self.signals.has_receivers():
            for task in fired:
                self._emit(SIGNAL_ENQUEUED, task)
        return fired

    def next_scheduled_time(self) -> Optional[float]:
        """Epoch seconds of the earliest scheduled task, or None."""
        return self.storage.next_scheduled_time()

    def create_consumer(self, **options: Any) -> 'Consumer':
        """A Consumer running this queue's tasks (see ``sqlq.consumer.Consumer``)."""
        from .consumer import Consumer
        return Consumer(self, **options)

    def ready_to_run(self, task: Task, timestamp: Optional[Timestamp] = None) -> bool:
        """True if the task has no eta or its eta has come."""
        return task.eta is None or to_timestamp(task.eta, self.utc) <= self._timestamp(timestamp)

    def add_schedule(self, task: Task) -> None:
        """Put ``task`` in the schedule for its eta."""
        self.storage.add_to_schedule(self.serialize_task(task),
                                     to_timestamp(task.eta, self.utc) if task.eta else self.clock())
        self._emit(SIGNAL_SCHEDULED, task)

    def read_schedule(self, timestamp: Optional[Timestamp] = None) -> List[Task]:
        """Remove and return the scheduled tasks due at ``timestamp`` (now by default)."""
        tasks = []
        for data in self.storage.read_schedule(self._timestamp(timestamp)):
            try:
                tasks.append(self.deserialize_task(data))
            except (DeserializationError, UnknownTaskError) as exc:
                reason = '%s: %s' % (type(exc).__name__, exc)
                logger.error('unusable scheduled message moved to dead letters: %s', reason)
                self.storage.add_dead_letter(data, reason)
        return tasks

    def read_periodic(self, timestamp: _dt.datetime) -> List[Task]:
        """New instances of the periodic tasks whose ``validate_datetime(timestamp)`` is True."""
        tasks = []
        for task_class in self.registry.periodic():
            try:
                due = task_class.validate_datetime(timestamp)
            except Exception:
                logger.exception('validate_datetime of %s failed', task_class.name)
                continue
            if due:
                tasks.append(task_class())
        return tasks

    def execute(self, task: Task, timestamp: Optional[Timestamp] = None, *,
                guard: Optional[Callable[[Task], ContextManager[Any]]] = None) -> Any:
        """Run ``task`` through the whole state machine and record its outcome.

        Order: not yet due -> schedule; expired -> drop; revoked -> drop; pre-execute hooks
        (CancelExecution cancels); run; store the result or error; retry, continue the
        pipeline or chord; post-execute hooks. The outcome and the release of the task's claim
        commit in one transaction. Returns the task's value (None if it failed: the error is
        logged and stored as the task's result). ``guard(task)``, if given, is a context
        manager entered around the task function alone (the consumer enforces timeouts so).
        """
        if not isinstance(task, Task):
            raise TypeError('execute expects a Task, not %s' % type(task).__name__)
        now = self._timestamp(timestamp)
        if not self.ready_to_run(task, now):
            self._settle(task, schedule=[task], final=False,
                         then=lambda applied: self._emit(SIGNAL_SCHEDULED, task))
            return None
        if task.expires_resolved is not None and to_timestamp(task.expires_resolved,
                                                              self.utc) < now:
            self._settle_skipped(task, SIGNAL_EXPIRED)
            return None
        if self._is_revoked(task, now, peek=False):
            self._settle_skipped(task, SIGNAL_REVOKED)
            return None
        try:
            for name, hook in list(self._pre_execute.items()):
                try:
                    hook(task)
                except CancelExecution:
                    raise
                except Exception:
                    logger.exception('pre-execute hook %s failed', name)
        except CancelExecution:
            self._settle_skipped(task, SIGNAL_CANCELED)
            return None

        self._emit(SIGNAL_EXECUTING, task)
        task._started = time.monotonic()
        value: Any = None
        exception: Optional[BaseException] = None
        try:
            if guard is None:
                value = task.execute()
            else:
                with guard(task):
                    value = task.execute()
        except Exception as exc:
            exception = exc
            tb = traceback.format_exc()
        finally:
            task._started = None

        def post_execute() -> None:
            self._run_post_execute(task, value, exception)

        if exception is None:
            self._succeeded(task, value, then=post_execute)
        else:
            self._failed(task, exception, tb, then=post_execute)
        return value

    def _run_post_execute(self, task: Task, value: Any, exception: Optional[BaseException]) -> None:
        for name, hook in list(self._post_execute.items()):
            try:
                hook(task, value, exception)
            except Exception:
                logger.exception('post-execute hook %s failed', name)

    # -- outcomes ------------------------------------------------------------------------------
    def _settle(self, task: Task, result: Any = EMPTY, enqueue: Sequence[Task] = (),
                schedule: Sequence[Task] = (), chord_value: Any = EMPTY,
                final: bool = True, dead_reason: Optional[str] = None,
                then: Optional[Callable[[bool], None]] = None) -> None:
        """Record a task's outcome and release its claim, together.

        ``final``: the task will not run again (its unique key is freed). ``dead_reason``:
        it failed for good and is kept in the dead letters with that reason. ``then(settled)``
        runs once the outcome is committed (``settled`` False: nothing was applied because the
        claim had been taken over). Inside a worker's outcome group the commit is deferred
        (see ``sqlq.outcomes``); otherwise it happens before this returns. Serialization
        errors are raised before anything is written.
        """
        now = self.clock()
        payloads_ready = []
        payloads_scheduled = []
        for follower in enqueue:
            self._resolve_expires(follower, now)
            payloads_ready.append((self._serialize_follower(follower), follower.priority or 0))
        for follower in schedule:
            payloads_scheduled.append((self.serialize_task(follower),
                                       to_timestamp(follower.eta, self.utc)))
        result_data = None if result is EMPTY else self.serializer.serialize(result)
        receipt, task.receipt = task.receipt, None
        storage = self.storage

        def apply() -> List[Task]:
            # Release the claim first: if it was taken over (this worker was presumed dead),
            # nothing of this outcome may be applied: the other run records its own.
            self._release_claim(task, receipt, dead_reason)
            if result_data is not None:
                storage.put_data(task.id, result_data, is_result=True, ttl=self.result_ttl)
            for data, priority in payloads_ready:
                storage.enqueue(data, priority)
            for data, ts in payloads_scheduled:
                storage.add_to_schedule(data, ts)
            enqueued = list(enqueue)
            if chord_value is not EMPTY:
                callback = self._chord_member_done(task, chord_value)
                if callback is not None:
                    storage.enqueue(self.serialize_task(callback), callback.priority or 0)
                    enqueued.append(callback)
            if final and task.unique_key is not None:
                self._release_unique_key(task)
            return enqueued

        def after(enqueued: Optional[List[Task]]) -> None:
            if enqueued is not None and self.signals.has_receivers():
                for follower in enqueued:
                    self._emit(SIGNAL_ENQUEUED, follower)
                for follower in schedule:
                    if follower is not task:
                        self._emit(SIGNAL_SCHEDULED, follower)
            if enqueued is not None and self._immediate:
                for follower in enqueued:
                    self._run_immediately_claimed(follower)
            if then is not None:
                then(enqueued is not None)

        group = getattr(self._local, 'outcomes', None)
        if group is not None and receipt is not None:
            simple = (not enqueue and not schedule and chord_value is EMPTY and
                      dead_reason is None and not (final and task.unique_key is not None))
            group.submit(task, apply, after,
                         (receipt, None if result_data is None else task.id, result_data,
                          self.result_ttl) if simple else None, receipt)
            return
        try:
            enqueued = commit_outcome(storage, task, apply)
        except BaseException:
            task.receipt = receipt  # the failed transaction released nothing
            raise
        after(enqueued)

    def _release_claim(self, task: Task, receipt: Any, dead_reason: Optional[str]) -> None:
        """Ack the task's claim (or move it to the dead letters); StaleClaim if not held."""
        if receipt is None:  # never claimed (immediate mode, at-most-once, local)
            if dead_reason is not None:
                self.storage.add_dead_letter(self.serialize_task(task), dead_reason,
                                             task.attempts)
            return
        if dead_reason is not None:
            held = self.storage.bury(receipt, dead_reason)
        else:
            held = self.storage.ack(receipt)
        if not held:
            raise StaleClaim()

    def _run_immediately_claimed(self, follower: Task) -> None:
        # In immediate mode followers (pipelines, retries, chord callbacks) run at once too.
        claim = self.storage.dequeue()
        if claim is None:
            return
        task = self.deserialize_task(claim.data)
        task.receipt = claim.receipt
        self.execute(task)

    def _serialize_follower(self, follower: Task) -> bytes:
        try:
            return self.serialize_task(follower)
        except SerializationError:
            if follower.args and isinstance(follower.args[-1], BaseException):
                # An unpicklable exception handed to an error handler: pass its description.
                from .exceptions import TaskException
                original = follower.args[-1]
                follower.args = follower.args[:-1] + (TaskException(
                    {'error': repr(original), 'task_id': follower.id}),)
                return self.serialize_task(follower)
            raise

    def _settle_skipped(self, task: Task, signal: str) -> None:
        """Record that ``task`` was skipped (no result; a chord counts it as SKIPPED), then
        send ``signal``."""
        self._settle(task, chord_value=SKIPPED if task.chord_config else EMPTY,
                     then=lambda applied: self._emit(signal, task))

    def _succeeded(self, task: Task, value: Any, then: Optional[Callable[[], None]] = None) -> None:
        store = self.results and not task.periodic and (value is not None or self.store_none)
        followers = []
        if task.on_complete is not None:
            follower = task.on_complete
            follower.extend_data(value)
            followers.append(follower)

        def settled(applied: bool) -> None:
            if applied:
                self._emit(SIGNAL_COMPLETE, task)
            if then is not None:
                then()

        try:
            self._settle(task, result=value if store else EMPTY, enqueue=followers,
                         chord_value=value if task.chord_config else EMPTY, then=settled)
        except SerializationError as exc:  # raised before anything was written
            logger.error('result of %s cannot be stored: %s', task, exc)
            self._failed(task, exc, traceback.format_exc(), retry=False, then=then)

    def build_error_result(self, task: Task, exception: BaseException,
                           tb: Optional[str] = None) -> Error:
        """The Error stored for a failed attempt."""
        return Error({
            'error': repr(exception),
            'traceback': tb if tb is not None else ''.join(traceback.format_exception(
                type(exception), exception, exception.__traceback__)),
            'task_id': task.id,
            'task_name': task.name,
            'retries': task.retries,
            'attempts': task.attempts,
        })

    def _failed(self, task: Task, exception: BaseException, tb: str, retry: bool = True,
                then: Optional[Callable[[], None]] = None) -> None:
        """Record a failed run: error result, signals, retry or on_error/chord continuation.

        ``then()`` runs once the outcome is committed."""
        delay: Optional[float] = None
        eta: Any = None
        consume = True
        store_error = True
        if isinstance(exception, RetryTask):
            retryable, consume = True, False
            eta, delay = exception.eta, exception.delay
            store_error = False
        elif isinstance(exception, RateLimitExceeded):
            self._emit(SIGNAL_RATE_LIMITED, task)
            retryable, consume, delay = exception.retry, False, exception.delay
            store_error = not exception.retry
        elif isinstance(exception, CancelExecution):
            self._emit(SIGNAL_CANCELED, task)
            if exception.retry is None:
                retryable = task.retries > 0
            else:
                retryable, consume = bool(exception.retry), False
            store_error = False
        else:
            if isinstance(exception, TaskLockedException):
                self._emit(SIGNAL_LOCKED, task)
            elif isinstance(exception, TaskTimeout):
                self._emit(SIGNAL_TIMEOUT, task)
            logger.error('task %s failed: %r\n%s', task, exception, tb.rstrip())
            retryable = task.retries > 0
        retryable = retryable and retry

        error = self.build_error_result(task, exception, tb)
        keep_error = self.results and store_error and (
            not retryable or self.store_intermediate_errors)
        if store_error and not isinstance(exception, (CancelExecution, TaskLockedException)):
            self._emit(SIGNAL_ERROR, task, exception)  # (a lock failure has SIGNAL_LOCKED)

        if retryable:
            retry_task = self._retry_copy(task, consume, eta, delay)
            self._emit(SIGNAL_RETRYING, task)
            if retry_task.eta is not None:
                def scheduled(applied: bool) -> None:
                    self._emit(SIGNAL_SCHEDULED, retry_task)
                    if then is not None:
                        then()

                self._settle(task, result=error if keep_error else EMPTY, schedule=[retry_task],
                             final=False, then=scheduled)
            else:
                self._settle(task, result=error if keep_error else EMPTY, enqueue=[retry_task],
                             final=False, then=_ignore_settled(then))
            return

        followers = []
        if task.on_error is not None:
            handler = task.on_error
            handler.extend_data((exception,))
            followers.append(handler)
        self._settle(task, result=error if keep_error else EMPTY, enqueue=followers,
                     chord_value=(error if store_error else SKIPPED) if task.chord_config
                     else EMPTY,
                     dead_reason='%s\n%s' % (error.metadata['error'], tb) if store_error
                     else None, then=_ignore_settled(then))

    def _retry_copy(self, task: Task, consume: bool, eta: Any, delay: Optional[float]) -> Task:
        """The same task (same id, so its Result still works) set up for its next attempt."""
        retry = task
        if consume:
            retry.retries -= 1
        if eta is not None:
            retry.eta = self.resolve_eta(eta, None)
        else:
            wait = seconds(delay, 'delay') if delay is not None else retry.retry_delay
            if delay is None and retry.retry_delay and retry.retry_backoff and \
                    retry.retry_backoff != 1:
                retry.retry_delay = retry.retry_delay * retry.retry_backoff
            retry.eta = self._datetime(self.clock() + wait) if wait else None
        return retry

    def _chord_member_done(self, task: Task, value: Any) -> Optional[Task]:
        """Record a chord member's final value; the callback Task once all are in."""
        config = task.chord_config
        prefix = '%s%s:' % (CHORD_PREFIX, config['id'])
        self.storage.put_data(prefix + str(config['index']), self.serializer.serialize(value))
        if self.storage.incr(prefix + 'done') < config['size']:
            return None
        values = []
        for index in range(config['size']):
            raw = self.storage.pop_data(prefix + str(index))
            values.append(SKIPPED if raw is EMPTY else self.serializer.deserialize(raw))
        self.storage.delete_data(prefix + 'done')
        raw_callback = self.storage.pop_data(CHORD_PREFIX + config['id'])
        if raw_callback is EMPTY:
            logger.error('chord %s lost its callback', config['id'])
            return None
        callback = self.deserialize_task(raw_callback)
        callback.extend_data((values,))
        return callback

    # -- revocation ----------------------------------------------------------------------------
    def _revoke_key(self, task: Any) -> str:
        if isinstance(task, Task):
            return REVOKE_PREFIX + task.id
        if isinstance(task, type) and issubclass(task, Task):
            return REVOKE_CLASS_PREFIX + task.name
        if isinstance(task, TaskWrapper):
            return REVOKE_CLASS_PREFIX + task.name
        if isinstance(task, str):
            return REVOKE_PREFIX + task
        raise TypeError('cannot revoke %r' % (task,))

    def _put_revoke(self, key: str, revoke_until: Optional[Timestamp], revoke_once: bool) -> None:
        until = None if revoke_until is None else self._timestamp(revoke_until)
        self.storage.put_data(key, self.serializer.serialize((until, bool(revoke_once))))

    def revoke(self, task: Task, revoke_until: Optional[Timestamp] = None,
               revoke_once: bool = False) -> None:
        """Skip ``task`` when it comes up (until ``revoke_until``; only once if ``revoke_once``)."""
        self._put_revoke(self._revoke_key(task), revoke_until, revoke_once)

    def restore(self, task: Task) -> bool:
        """Undo ``revoke``; True if the task was revoked."""
        return self.storage.delete_data(self._revoke_key(task))

    def revoke_by_id(self, id: str, revoke_until: Optional[Timestamp] = None,
                     revoke_once: bool = False) -> None:
        self._put_revoke(REVOKE_PREFIX + id, revoke_until, revoke_once)

    def restore_by_id(self, id: str) -> bool:
        return self.storage.delete_data(REVOKE_PREFIX + id)

    def revoke_all(self, task_class: Any, revoke_until: Optional[Timestamp] = None,
                   revoke_once: bool = False) -> None:
        """Revoke every invocation of a task class (or TaskWrapper)."""
        self._put_revoke(REVOKE_CLASS_PREFIX + task_class.name, revoke_until, revoke_once)

    def restore_all(self, task_class: Any) -> bool:
        return self.storage.delete_data(REVOKE_CLASS_PREFIX + task_class.name)

    def is_revoked(self, task: Any, timestamp: Optional[Timestamp] = None,
                   peek: bool = True) -> bool:
        """Whether a task (instance, class, wrapper or id) is revoked at ``timestamp``."""
        return self._is_revoked(task, self._timestamp(timestamp), peek)

    #: ``flag_prefix`` for :meth:`~sqlq.storage.base.Storage.dequeue_many`: the claims tell
    #: whether any revoke flag existed (see :meth:`prefetch_revocations`).
    revoke_flags_prefix = 'revoke'  # what REVOKE_PREFIX and REVOKE_CLASS_PREFIX start with

    def prefetch_revocations(self, tasks: Sequence[Task], flags_possible: bool = True) -> None:
        """Read the revoke flags of claimed tasks in one query, for their ``execute`` to use
        (instead of one read per task) if it starts within REVOKE_PREFETCH_TTL seconds.
        ``flags_possible=False``: their claims found no revoke flag at all; nothing is read."""
        if not flags_possible:
            none: Tuple[float, Dict[str, bytes]] = (time.monotonic(), {})
            for task in tasks:
                task.revoke_flags = none
            return
        keys = set()
        for task in tasks:
            keys.add(REVOKE_PREFIX + task.id)
            keys.add(REVOKE_CLASS_PREFIX + task.name)
        prefetched = (time.monotonic(), self.storage.peek_many(list(keys)))
        for task in tasks:
            task.revoke_flags = prefetched

    def _is_revoked(self, task: Any, now: float, peek: bool) -> bool:
        keys = [self._revoke_key(task)]
        flags = None
        if isinstance(task, Task):
            keys.append(REVOKE_CLASS_PREFIX + task.name)
            prefetched, task.revoke_flags = task.revoke_flags, None
            if prefetched is not None and \
                    time.monotonic() - prefetched[0] < REVOKE_PREFETCH_TTL:
                flags = prefetched[1]
        if flags is None:
            flags = self.storage.peek_many(keys)  # one read on the path to a task's start
        for key in keys:
            raw = flags.get(key, EMPTY)
            if raw is EMPTY:
                continue
            until, once = self.serializer.deserialize(raw)
            if until is not None and until <= now:
                if not peek:
                    self.storage.delete_data(key)
                continue
            if once and not peek:
                self.storage.delete_data(key)
            return True
        return False

    def reschedule(self, task: Task, eta: Optional[Timestamp] = None,
                   delay: Union[float, _dt.timedelta, None] = None, expires: Any = None,
                   priority: Optional[int] = None,
                   preserve_pipeline: bool = True) -> Union[Result, ResultGroup, None]:
        """Revoke ``task`` once and enqueue a copy with a new id at ``eta``/after ``delay``."""
        validate_options({'priority': priority, 'expires': expires}, 'reschedule')
        self.revoke(task, revoke_once=True)
        copy = type(task)(
            task.args, task.kwargs, eta=self.resolve_eta(eta, delay), retries=task.retries,
            retry_delay=task.retry_delay, retry_backoff=task.retry_backoff,
            priority=task.priority if priority is None else priority,
            expires=task.expires if expires is None else expires, timeout=task.timeout,
            on_complete=task.on_complete if preserve_pipeline else None,
            on_error=task.on_error if preserve_pipeline else None)
        return self.enqueue(copy)

    # -- locks and rate limits -----------------------------------------------------------------
    def lock_task(self, lock_name: str, ttl: Optional[float] = None) -> TaskLock:
        """A lock usable as decorator or context manager (``ttl`` frees a crashed holder's lock)."""
        self._locks.add(lock_name)
        return TaskLock(self, lock_name, ttl)

    def is_locked(self, lock_name: str) -> bool:
        return TaskLock(self, lock_name).is_locked()

    def flush_locks(self, *names: str) -> set:
        """Release the named locks, or every lock when no names are given; returns the names
        of the released locks known to this process."""
        flushed = set()
        for name in set(names) or self._locks:
            if self.storage.delete_data(LOCK_PREFIX + name):
                flushed.add(name)
        if not names:
            self.storage.delete_prefix(LOCK_PREFIX)  # locks taken by other programs too
        return flushed

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
        task = Task(id=id)
        return Result(self, task).get(blocking, timeout, backoff, max_delay, revoke_on_timeout,
                                      preserve)

    def wait_for_change(self, timeout: float, topic: Optional[str] = None) -> bool:
        """Block up to ``timeout`` seconds until another writer may have committed (something
        of ``topic``: 'queue', 'schedule' or 'data'; see Storage.wait_for_change)."""
        return self.storage.wait_for_change(timeout, topic)

    # -- inspection ----------------------------------------------------------------------------
    def _decode_listing(self, items: Iterable[bytes]) -> List[Task]:
        tasks = []
        for data in items:
            try:
                tasks.append(self.deserialize_task(data))
            except (DeserializationError, UnknownTaskError) as exc:
                logger.warning('skipping unreadable stored task in listing: %s', exc)
        return tasks

    def pending(self, limit: Optional[int] = None) -> List[Task]:
        """Ready tasks in the order they will run."""
        return self._decode_listing(self.storage.enqueued_items(limit))

    def pending_count(self) -> int:
        return self.storage.queue_size()

    def running_count(self) -> int:
        """Tasks claimed by a worker and not finished."""
        return self.storage.claimed_size()

    def scheduled(self, limit: Optional[int] = None) -> List[Task]:
        """Tasks waiting for their eta, soonest first."""
        return self._decode_listing(self.storage.scheduled_items(limit))

    def scheduled_count(self) -> int:
        return self.storage.schedule_size()

    def result_count(self) -> int:
        """Stored results (not revoke flags, locks or other keys)."""
        return self.storage.result_store_size()

    def all_results(self) -> Dict[str, Any]:
        return {key: self.serializer.deserialize(value)
                for key, value in self.storage.result_items().items()}

    def running(self) -> List['RunningTask']:
        """Tasks claimed by workers, oldest claim first, with their owners."""
        from .recovery import ClaimRecovery
        recovery = ClaimRecovery(self)
        info = {o.id: o for o in self.storage.owners()}
        now = time.time()
        items = []
        for item in self.storage.claimed_items():
            try:
                task: Optional[Task] = self.deserialize_task(item.data)
            except (DeserializationError, UnknownTaskError):
                task = None
            owner = info.get(item.owner)
            alive = not recovery.owner_is_dead(
                item.owner, owner.started_at if owner else None,
                owner.heartbeat_at if owner else None, now)
            items.append(RunningTask(task, item.id, item.owner, item.claimed_at, item.attempts,
                                     item.recoveries, alive))
        return items

    def failed(self, limit: Optional[int] = None) -> List['FailedTask']:
        """Tasks that failed for good (dead letters), oldest first; ``task`` is None for a
        message that cannot be decoded."""
        items = []
        for letter in self.storage.dead_letters(limit):
            try:
                task: Optional[Task] = self.deserialize_task(letter.data)
            except (DeserializationError, UnknownTaskError):
                task = None
            items.append(FailedTask(letter.id, task, letter.reason, letter.failed_at,
                                    letter.enqueued_at, letter.attempts))
        return items

    def requeue_failed(self, ids: Optional[Iterable[int]] = None) -> int:
        """Put failed tasks (all, or those dead-letter ids) back in the queue."""
        return self.storage.requeue_dead_letters(None if ids is None else list(ids))

    def purge_failed(self, ids: Optional[Iterable[int]] = None) -> int:
        """Delete failed tasks (all, or those dead-letter ids)."""
        return self.storage.purge_dead_letters(None if ids is None else list(ids))

    def recover_claims(self) -> int:
        """Return tasks claimed by dead workers/consumers to the queue; how many."""
        from .recovery import ClaimRecovery
        return ClaimRecovery(self).recover()

    def heartbeat(self) -> None:
        """Record that this process (an owner of claims) is alive."""
        self.storage.heartbeat()

    def maintenance(self) -> Dict[str, Any]:
        """Checkpoint the WAL, reclaim some free pages, drop expired results and locks."""
        return self.storage.maintenance()

    def vacuum(self) -> None:
        """Rebuild the database file to its minimal size (blocks other writers meanwhile)."""
        self.storage.vacuum()

    def stats(self) -> Dict[str, Any]:
        """Counts (pending, scheduled, running, results, failed) and database sizes."""
        raw = self.storage.stats()
        stats: Dict[str, Any] = {
            'queue': self.name,
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
        return stats

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


class MemoryQueue(Queue):
    """A queue in this process's memory: for tests and single-process use."""

    storage_class = MemoryStorage


class SqliteQueue(Queue):
    """A queue in one SQLite file, shared by every producer and consumer process that opens it.

    ``filename`` is the database path; storage options: ``synchronous`` ('NORMAL' default,
    'FULL' for durability across power loss), ``timeout`` (seconds to wait on a locked
    database).
    """

    def __init__(self, filename: str, name: str = 'sqlq', **kwargs: Any) -> None:
        from .storage.sqlite import SqliteStorage
        self.filename = filename
        kwargs.setdefault('storage_class', SqliteStorage)
        super().__init__(name, filename=filename, **kwargs)


class RedisQueue(Queue):
    """A queue on a Redis server, for producers and consumers spread over several hosts.

    Connection: ``url='redis://host:port/db'``, or ``connection_pool=``, or ``host``/``port``/
    ``db``/``password`` and other redis-py connection options. Needs the ``redis`` extra
    (``pip install 'sqlq[redis]'``).
    """

    def __init__(self, name: str = 'sqlq', **kwargs: Any) -> None:
        from .storage.redis import RedisStorage
        kwargs.setdefault('storage_class', RedisStorage)
        super().__init__(name, **kwargs)
