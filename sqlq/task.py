"""The task model: a Task is one invocation of a registered function; a TaskWrapper is what
``@queue.task()`` returns and what users call to enqueue work.

Each decorated function gets its own plain Task subclass holding the function and the
task's default options, as with huey.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import gc
import inspect
import os
import sys
import time
from typing import (TYPE_CHECKING, Any, Callable, ClassVar, Dict, Iterable, Iterator, Optional,
                    Tuple, Type, Union)

from . import _accel
from ._time import seconds
from .exceptions import ConfigurationError, TaskTimeout

if TYPE_CHECKING:  # pragma: no cover
    from .api import Queue
    from .result import Result, ResultGroup

Number = Union[int, float]
Delay = Union[int, float, _dt.timedelta]

# Options a task accepts at decoration time and per call of ``schedule``.
TASK_OPTIONS = ('retries', 'retry_delay', 'retry_backoff', 'priority', 'expires', 'timeout')


class Task:
    """One invocation of a task function, with its options and pipeline links."""

    name: ClassVar[str] = 'sqlq.task'
    queue: ClassVar[Optional['Queue']] = None
    context: ClassVar[bool] = False
    periodic: ClassVar[bool] = False
    default_retries: ClassVar[int] = 0
    default_retry_delay: ClassVar[float] = 0
    default_retry_backoff: ClassVar[float] = 0
    default_priority: ClassVar[Optional[int]] = None
    default_expires: ClassVar[Any] = None
    default_timeout: ClassVar[Optional[float]] = None
    #: Delete the task when a worker takes it (huey's delivery): a crash loses it instead
    #: of running it twice. For work that must never run twice.
    at_most_once: ClassVar[bool] = False
    #: A second enqueue of the same call (same arguments) while the first is pending or
    #: running returns the first one's Result instead of enqueueing again.
    unique: ClassVar[bool] = False

    def __init__(self, args: Optional[Iterable[Any]] = None,
                 kwargs: Optional[Dict[str, Any]] = None, id: Optional[str] = None,
                 eta: Optional[_dt.datetime] = None, retries: Optional[int] = None,
                 retry_delay: Optional[Delay] = None, priority: Optional[int] = None,
                 expires: Any = None, on_complete: Optional['Task'] = None,
                 on_error: Optional['Task'] = None,
                 expires_resolved: Optional[_dt.datetime] = None,
                 timeout: Optional[Number] = None, chord_config: Optional[Dict[str, Any]] = None,
                 retry_backoff: Optional[Number] = None,
                 unique_key: Optional[str] = None) -> None:
        self.args: Tuple[Any, ...] = () if args is None else tuple(args)
        self.kwargs: Dict[str, Any] = {} if kwargs is None else dict(kwargs)
        self.id: str = id if id is not None else _accel.new_task_id()
        self.eta = eta
        self.retries: int = self.default_retries if retries is None else retries
        self.retry_delay: float = (self.default_retry_delay if retry_delay is None
                                   else seconds(retry_delay, 'retry_delay'))
        self.retry_backoff: float = (self.default_retry_backoff if retry_backoff is None
                                     else retry_backoff)
        self.priority: Optional[int] = self.default_priority if priority is None else priority
        self.expires = self.default_expires if expires is None else expires
        self.expires_resolved = expires_resolved
        self.timeout: Optional[float] = self.default_timeout if timeout is None else timeout
        self.on_complete = on_complete
        self.on_error = on_error
        self.chord_config = chord_config
        self.unique_key = unique_key
        # Set by the queue when the task was claimed from storage.
        self.receipt: Any = None
        self.attempts: int = 0
        # (monotonic time, {key: flag}) read with the claim (Queue.prefetch_revocations).
        self.revoke_flags: Optional[Tuple[float, Dict[str, bytes]]] = None
        self._started: Optional[float] = None

    # -- running -------------------------------------------------------------------------------
    @staticmethod
    def func(*args: Any, **kwargs: Any) -> Any:  # replaced per task class
        raise NotImplementedError

    @staticmethod
    def check_call(args: tuple, kwargs: Dict[str, Any]) -> None:  # replaced per task class
        """TypeError if ``args``/``kwargs`` can't be passed to the task function."""

    def execute(self) -> Any:
        """Run the task function with this invocation's arguments."""
        if self.context:
            return self.func(*self.args, task=self, **self.kwargs)
        return self.func(*self.args, **self.kwargs)

    @property
    def time_remaining(self) -> Optional[float]:
        """Seconds left before ``timeout`` (None without a timeout or before the start)."""
        if self.timeout is None or self._started is None:
            return None
        return self.timeout - (time.monotonic() - self._started)

    @property
    def is_timed_out(self) -> bool:
        remaining = self.time_remaining
        return remaining is not None and remaining <= 0

    def check_timeout(self) -> None:
        """Raise TaskTimeout if the task has run past its timeout (cooperative check)."""
        if self.is_timed_out:
            raise TaskTimeout('%s exceeded its timeout of %ss' % (self, self.timeout))

    # -- pipelines -----------------------------------------------------------------------------
    def then(self, task: Union['Task', 'TaskWrapper'], *args: Any, **kwargs: Any) -> 'Task':
        """Run ``task`` after this one succeeds, passing this one's result as its last argument."""
        follower = _as_task(task, args, kwargs)
        if self.on_complete is not None:
            self.on_complete.then(follower)
        else:
            self.on_complete = follower
        return self

    def error(self, task: Union['Task', 'TaskWrapper'], *args: Any, **kwargs: Any) -> 'Task':
        """Run ``task`` if this one fails for good, passing the exception as its last argument."""
        handler = _as_task(task, args, kwargs)
        if self.on_error is not None:
            self.on_error.error(handler)
        else:
            self.on_error = handler
        return self

    def extend_data(self, data: Any) -> None:
        """Add a parent's result to this task's arguments (tuple: extend, dict: update)."""
        if data is None or data == ():
            return
        if isinstance(data, tuple):
            self.args += data
        elif isinstance(data, dict):
            self.kwargs.update(data)
        else:
            self.args += (data,)

    def chain(self) -> list:
        """This task and its ``then`` followers, in order."""
        tasks, task = [], self
        while task is not None:
            tasks.append(task)
            task = task.on_complete
        return tasks

    # -- identity ------------------------------------------------------------------------------
    def __repr__(self) -> str:
        parts = ['%s: %s' % (self.name, self.id)]
        if self.eta:
            parts.append('@%s' % self.eta)
        if self.priority:
            parts.append('p=%s' % self.priority)
        if self.retries:
            parts.append('%s retries' % self.retries)
        return ' '.join(parts)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Task) and self.id == other.id and self.name == other.name
                and self.eta == other.eta)

    def __hash__(self) -> int:
        return hash((self.id, self.name))


class PeriodicTask(Task):
    """A task the consumer enqueues whenever ``validate_datetime`` accepts the current minute."""

    periodic: ClassVar[bool] = True

    @staticmethod
    def validate_datetime(timestamp: _dt.datetime) -> bool:  # replaced per task class
        return False


def _as_task(task: Union[Task, 'TaskWrapper'], args: tuple, kwargs: dict) -> Task:
    if isinstance(task, TaskWrapper):
        return task.s(*args, **kwargs)
    if isinstance(task, Task):
        if args or kwargs:
            raise TypeError('arguments are given with .s() when passing a Task instance')
        return task
    raise TypeError('expected a task (decorated function) or Task, not %s' % type(task).__name__)


def default_task_name(func: Callable[..., Any]) -> str:
    """``module.qualname`` of ``func``; a script run as ``__main__`` uses its file's name, so a
    producer script and a consumer that imports it agree on the name."""
    module = func.__module__
    if module == '__main__':
        main = sys.modules.get('__main__')
        spec = getattr(main, '__spec__', None)
        if spec is not None and spec.name:
            module = spec.name
        elif getattr(main, '__file__', None):
            module = os.path.splitext(os.path.basename(main.__file__))[0]
    return '%s.%s' % (module, func.__qualname__)


def validate_options(options: Dict[str, Any], where: str) -> Dict[str, Any]:
    """Check task option types, raising TypeError/ValueError that name the option."""
    retries = options.get('retries')
    if retries is not None and (not isinstance(retries, int) or isinstance(retries, bool)
                                or retries < 0):
        raise TypeError('%s: retries must be a non-negative int, not %r' % (where, retries))
    for key in ('retry_delay', 'timeout'):
        if options.get(key) is not None:
            options[key] = seconds(options[key], '%s: %s' % (where, key))
    backoff = options.get('retry_backoff')
    if backoff is not None and (not isinstance(backoff, (int, float)) or isinstance(backoff, bool)
                                or backoff < 0):
        raise TypeError('%s: retry_backoff must be a non-negative number, not %r'
                        % (where, backoff))
    priority = options.get('priority')
    if priority is not None and (not isinstance(priority, int) or isinstance(priority, bool)):
        raise TypeError('%s: priority must be an int, not %s' % (where, type(priority).__name__))
    expires = options.get('expires')
    if expires is not None and not isinstance(expires, _dt.datetime):
        seconds(expires, '%s: expires' % where)
    return options


class TaskWrapper:
    """What ``@queue.task()`` returns: call it to enqueue, or use ``s``/``schedule``/``map``."""

    def __init__(self, queue: 'Queue', func: Callable[..., Any], context: bool = False,
                 name: Optional[str] = None, task_base: Optional[Type[Task]] = None,
                 **settings: Any) -> None:
        self.queue = queue
        self.func = func
        self.context = context
        self.name = name or default_task_name(func)
        validate_options({k: settings.get(k) for k in TASK_OPTIONS}, 'task %s' % self.name)
        self._signature = _signature_of(func)
        self._fits = _fast_fit(self._signature, context)
        if context and self._signature is not None and not _accepts(self._signature, 'task'):
            raise ConfigurationError('task %s has context=True, so its function must accept a '
                                     '"task" keyword argument' % self.name)
        attrs: Dict[str, Any] = {
            'name': self.name, 'queue': queue, 'context': context,
            'func': staticmethod(func), '__module__': func.__module__,
            'check_call': staticmethod(self.check_arguments),
        }
        for option in TASK_OPTIONS:
            value = settings.pop(option, None)
            if value is not None:
                attrs['default_' + option] = value
        attrs.update(settings)  # extra settings become class attributes, as with huey
        base = task_base or Task
        self.task_class: Type[Task] = type(func.__name__, (base,), attrs)
        queue.register_task(self.task_class)
        functools.update_wrapper(self, func)

    # -- enqueueing ----------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Union['Result', 'ResultGroup', Any]:
        """Enqueue a call (or run it at once in immediate mode) and return its Result."""
        return self.queue.enqueue(self.task_class(args, kwargs))

    def s(self, *args: Any, **kwargs: Any) -> Task:
        """A Task for this call, not yet enqueued (for pipelines, groups and chords).

        Arguments may be incomplete: a pipeline stage or chord callback receives the rest.
        """
        self.check_arguments(args, kwargs, partial=True)
        return self.task_class(args, kwargs)

    def schedule(self, args: Optional[Iterable[Any]] = None,
                 kwargs: Optional[Dict[str, Any]] = None,
                 eta: Union[_dt.datetime, Number, None] = None, delay: Optional[Delay] = None,
                 priority: Optional[int] = None, retries: Optional[int] = None,
                 retry_delay: Optional[Delay] = None, retry_backoff: Optional[Number] = None,
                 expires: Any = None, timeout: Optional[Number] = None,
                 id: Optional[str] = None,
                 unique_key: Optional[str] = None) -> Union['Result', 'ResultGroup']:
        """Enqueue a call to run at ``eta`` (a datetime or epoch seconds) or after ``delay``.

        With ``unique_key``, while a task enqueued with the same key is pending, scheduled or
        running, this returns that task's Result instead of enqueueing another.
        """
        args = () if args is None else tuple(args)
        kwargs = {} if kwargs is None else dict(kwargs)
        options = validate_options(
            {'priority': priority, 'retries': retries, 'retry_delay': retry_delay,
             'retry_backoff': retry_backoff, 'expires': expires, 'timeout': timeout},
            '%s.schedule' % self.name)
        for label, value in (('id', id), ('unique_key', unique_key)):
            if value is not None and not isinstance(value, str):
                raise TypeError('%s.schedule: %s must be a str, not %s'
                                % (self.name, label, type(value).__name__))
        task = self.task_class(args, kwargs, id=id, eta=self.queue.resolve_eta(eta, delay),
                               unique_key=unique_key, **options)
        return self.queue.enqueue(task)

    def map(self, it: Iterable[Any]) -> 'ResultGroup':
        """Enqueue one call per item (a tuple is the argument list) in one transaction."""
        items = it if isinstance(it, (list, tuple, range)) else list(it)
        with cycle_collector_paused(len(items)):
            tasks = []
            for item in items:
                args = item if isinstance(item, tuple) else (item,)
                tasks.append(self.task_class(args, {}))
            return self.queue.enqueue_many(tasks)

    def call_local(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function in this process, bypassing the queue."""
        return self.func(*args, **kwargs)

    # -- revocation ----------------------------------------------------------------------------
    def revoke(self, revoke_until: Union[_dt.datetime, Number, None] = None,
               revoke_once: bool = False) -> None:
        """Revoke every invocation of this task (until ``revoke_until``, or only the next one)."""
        self.queue.revoke_all(self.task_class, revoke_until, revoke_once)

    def restore(self) -> bool:
        """Undo ``revoke``."""
        return self.queue.restore_all(self.task_class)

    def is_revoked(self, timestamp: Optional[_dt.datetime] = None, peek: bool = True) -> bool:
        return self.queue.is_revoked(self.task_class, timestamp, peek)

    def unregister(self) -> bool:
        """Remove this task from its queue's registry."""
        return self.queue.unregister_task(self.task_class)

    # -- argument checking ---------------------------------------------------------------------
    def check_arguments(self, args: tuple, kwargs: Dict[str, Any], partial: bool = False) -> None:
        """TypeError at the call if the arguments don't fit the function (with ``partial``,
        missing arguments are allowed)."""
        if self.context and 'task' in kwargs:
            raise TypeError('%s: "task" is reserved for context tasks; sqlq passes it' % self.name)
        if self._signature is None or self._fits(args, kwargs, partial):
            return
        try:
            bind = self._signature.bind_partial if partial else self._signature.bind
            if self.context:
                bind(*args, task=None, **kwargs)
            else:
                bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError('%s%s: %s' % (self.name, self._signature, exc)) from None

    def __repr__(self) -> str:
        return '<TaskWrapper %s>' % self.name


#: Batches at least this large pause the cycle collector while they build their objects.
GC_PAUSE_MIN_BATCH = 1000


@contextlib.contextmanager
def cycle_collector_paused(size: int) -> Iterator[None]:
    """Pause Python's cycle collector while a batch of ``size`` tasks builds its objects.

    A large batch creates several long-lived objects per task (task, arguments, message,
    result handle), none in a reference cycle; the collector would rescan them again and
    again as they pile up -- a fifth of ``map``'s time at 20,000 tasks. Small batches, and
    code that runs with the collector already off, are left alone.
    """
    if size < GC_PAUSE_MIN_BATCH or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _fast_fit(signature: Optional[inspect.Signature],
              context: bool) -> Callable[[tuple, Dict[str, Any], bool], bool]:
    """A cheap ``fits(args, kwargs, partial)`` for functions whose parameters are all plain
    positional-or-keyword (optionally with ``*args``/``**kwargs``): True when the call
    certainly binds; False means "ask inspect" (which words the error). Signature.bind costs
    more than the rest of an enqueue."""
    if signature is None:
        return lambda args, kwargs, partial: True
    P = inspect.Parameter
    names, required = [], set()
    varargs = varkw = False
    for param in signature.parameters.values():
        if param.kind is P.POSITIONAL_OR_KEYWORD:
            names.append(param.name)
            if param.default is P.empty and not (context and param.name == 'task'):
                required.add(param.name)
        elif param.kind is P.VAR_POSITIONAL:
            varargs = True
        elif param.kind is P.VAR_KEYWORD:
            varkw = True
        else:  # positional-only or keyword-only: leave it to inspect
            return lambda args, kwargs, partial: False
    count = len(names)
    position = {name: index for index, name in enumerate(names)}

    def fits(args: tuple, kwargs: Dict[str, Any], partial: bool) -> bool:
        given = len(args)
        if given > count and not varargs:
            return False
        for key in kwargs:
            index = position.get(key)
            if index is None:
                if not varkw:
                    return False
            elif index < given:
                return False  # given twice
        if not partial:
            for name in names[given:]:
                if name in required and name not in kwargs:
                    return False
        return True
    return fits


def _signature_of(func: Callable[..., Any]) -> Optional[inspect.Signature]:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):  # some builtins have no signature
        return None


def _accepts(signature: inspect.Signature, name: str) -> bool:
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD
               for p in signature.parameters.values())
