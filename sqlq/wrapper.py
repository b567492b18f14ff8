"""What ``@queue.task()`` returns: the callable users enqueue work with.

A :class:`TaskWrapper` builds one plain :class:`~sqlq.task.Task` subclass per decorated
function (holding the function and its default options, as huey does) and registers it with
the queue.

Names, as with huey: ``task.name`` (and ``wrapper.name``) is the function's ``__name__``, or
the ``name=`` given to the decorator. The queue registers the task -- and its messages carry
it -- under ``registered_name``: ``module.qualname``, or the ``name=`` given.

Typing: ``TaskWrapper[P, R]`` is generic in the function's parameters ``P`` and its return
type ``R`` (what its coroutine returns, for an ``async def``), so that a type checker reads
``add(1, 2)`` as a ``Result[int]`` and rejects ``add('a', [])``. A call returns None instead
when its queue keeps no results (``results=False``): the annotations describe the common case
(see the README's typing note).
"""

from __future__ import annotations

import datetime as _dt
import functools
import inspect
import os
import sys
import warnings
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Coroutine,
    Dict,
    Generic,
    Iterable,
    List,
    Optional,
    Protocol,
    Tuple,
    Type,
    Union,
    cast,
    overload,
)

from ._aio import is_async_function
from ._gc import cycle_collector_paused
from ._signature import accepts, fast_fit, signature_of
from ._typing import P, R
from .exceptions import ConfigurationError
from .options import CALL_KEYWORDS, OPTION_NAMES, OptionAttributes, TaskOptions, check_options
from .task import Task

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Concatenate

    from .api import Queue
    from .result import Result, ResultGroup

__all__ = ['TaskWrapper', 'TaskDecorator', 'ArgumentContextDecorator', 'default_task_name',
           'within_context', 'task_function', 'check_async', 'check_parameter_names']

Number = Union[int, float]


def task_function(func: Any) -> Callable[..., Any]:
    """The function to make a task of: ``func``, or the function of a task of another queue
    (``queue2.task()(task_of_queue1)`` makes a task of the same function, as with huey)."""
    while isinstance(func, TaskWrapper):
        func = func.func
    return func  # type: ignore[no-any-return]


def check_async(func: Callable[..., Any]) -> bool:
    """True if ``func`` is an ``async def`` function: its task's runs await the coroutine a
    call returns (see :meth:`sqlq.task.Task.execute` and the asyncio worker).
    ConfigurationError for an async generator function, which no run could consume."""
    if inspect.isasyncgenfunction(func):
        raise ConfigurationError(
            'task %s is an async generator function: a task must return (or, as an async '
            'function, await) its value, not yield it' % getattr(func, '__qualname__', func))
    return is_async_function(func)


def check_parameter_names(signature: Optional[inspect.Signature], task_name: str) -> List[str]:
    """The function's parameters named like a call keyword (``priority``, ``id``, ``delay``...:
    :data:`~sqlq.options.CALL_KEYWORDS`), which a call takes as a task setting instead.

    As huey documents, a value for such a parameter must be passed positionally. One that
    cannot be (keyword-only) would never receive a value: ConfigurationError. For the others a
    UserWarning at decoration time names them.
    """
    if signature is None:
        return []
    P = inspect.Parameter
    clashing = [p for p in signature.parameters.values() if p.name in CALL_KEYWORDS
                and p.kind in (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY)]
    unreachable = [p.name for p in clashing if p.kind is P.KEYWORD_ONLY]
    if unreachable:
        raise ConfigurationError(
            'task %s: keyword-only parameter(s) %s can never receive a value, because a task '
            'call takes the keywords %s as task options: rename them'
            % (task_name, ', '.join(unreachable), ', '.join(sorted(CALL_KEYWORDS))))
    names = [p.name for p in clashing]
    if names:
        warnings.warn(
            'task %s: parameter(s) %s are also task option keywords: a call giving them by '
            'keyword sets the option instead (as with huey); pass them positionally, or '
            'rename them' % (task_name, ', '.join(names)), UserWarning, stacklevel=4)
    return names


def within_context(func: Callable[..., Any], obj: Any, as_argument: bool) -> Callable[..., Any]:
    """``func`` run inside ``with obj`` (the context's value passed first if ``as_argument``),
    with ``func``'s signature minus that first parameter, so calls are checked against the
    rest. For an async function, an async function running inside ``async with obj`` (or
    ``with obj`` if it is not an asynchronous context manager)."""
    func = task_function(func)
    inner: Callable[..., Any]
    if check_async(func):
        is_async_context = hasattr(obj, '__aenter__')

        async def ainner(*args: Any, **kw: Any) -> Any:
            if is_async_context:
                async with obj as ctx:
                    return await (func(ctx, *args, **kw) if as_argument else func(*args, **kw))
            with obj as ctx:
                return await (func(ctx, *args, **kw) if as_argument else func(*args, **kw))
        inner = functools.wraps(func)(ainner)
    else:
        def sinner(*args: Any, **kw: Any) -> Any:
            with obj as ctx:
                if as_argument:
                    return func(ctx, *args, **kw)
                return func(*args, **kw)
        inner = functools.wraps(func)(sinner)
    if as_argument:
        try:
            sig = inspect.signature(func)
            params = list(sig.parameters.values())[1:]
            setattr(inner, '__signature__', sig.replace(parameters=params))  # noqa: B010
        except (TypeError, ValueError):
            pass
    return inner


def default_task_name(func: Callable[..., Any]) -> str:
    """``module.qualname`` of ``func``; a script run as ``__main__`` uses its file's name, so a
    producer script and a consumer that imports it agree on the name."""
    module = func.__module__
    if module == '__main__':
        main = sys.modules.get('__main__')
        spec = getattr(main, '__spec__', None)
        main_file = getattr(main, '__file__', None)
        if spec is not None and spec.name:
            module = spec.name
        elif main_file:
            module = os.path.splitext(os.path.basename(main_file))[0]
    return '%s.%s' % (module, func.__qualname__)


class TaskDecorator(Protocol):
    """What ``queue.task(...)`` and ``queue.periodic_task(...)`` return (for type checkers):
    a decorator making a ``TaskWrapper[P, R]`` of a function ``(P) -> R`` or of an
    ``async def`` function ``(P) -> Coroutine[..., R]``."""

    @overload
    def __call__(self, func: Callable[P, Coroutine[Any, Any, R]]) -> TaskWrapper[P, R]: ...

    @overload
    def __call__(self, func: Callable[P, R]) -> TaskWrapper[P, R]: ...


class ArgumentContextDecorator(Protocol):
    """What ``queue.context_task(obj, as_argument=True)`` returns: the function's first
    parameter receives the context's value, so the task's parameters are the others."""

    @overload
    def __call__(self, func: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]]
                 ) -> TaskWrapper[P, R]: ...

    @overload
    def __call__(self, func: Callable[Concatenate[Any, P], R]) -> TaskWrapper[P, R]: ...


class TaskWrapper(OptionAttributes, Generic[P, R]):
    """What ``@queue.task()`` returns: call it to enqueue, or use ``s``/``schedule``/``map``.

    Its option attributes (``retries``, ``retry_delay``...) are the task's defaults.
    """

    def __init__(self, queue: 'Queue', func: Callable[..., Any], context: bool = False,
                 name: Optional[str] = None, task_base: Optional[Type[Task]] = None,
                 **settings: Any) -> None:
        func = task_function(func)
        is_async = check_async(func)
        self.queue = queue
        self.func = func
        self.context = context
        #: The task's name (huey's ``task.name``): the function's, or the ``name`` given.
        self.name: str = name or func.__name__
        #: What the queue registers it under and its messages carry.
        self.registered_name: str = name or default_task_name(func)
        options = check_options({key: settings.pop(key) for key in OPTION_NAMES
                                 if key in settings}, 'task %s' % self.registered_name)
        self._signature = signature_of(func)
        self._fits = fast_fit(self._signature, context)
        self._keyword_params = check_parameter_names(self._signature, self.registered_name)
        if context and self._signature is not None and not accepts(self._signature, 'task'):
            raise ConfigurationError('task %s has context=True, so its function must accept a '
                                     '"task" keyword argument' % self.registered_name)
        base = task_base or Task
        attrs: Dict[str, Any] = {
            'name': self.name, 'registered_name': self.registered_name, 'queue': queue,
            'context': context, 'func': staticmethod(func), '__module__': func.__module__,
            'check_call': staticmethod(self.check_arguments), 'is_async': is_async,
            'default_options': base.default_options.updated(options),
        }
        attrs.update(settings)  # extra settings become class attributes, as with huey
        self.task_class: Type[Task] = type(func.__name__, (base,), attrs)
        queue.register_task(self.task_class)
        functools.update_wrapper(self, func)

    @property
    def options(self) -> TaskOptions:
        """The task's default options (what an invocation gets unless given others)."""
        return self.task_class.default_options

    @options.setter
    def options(self, value: TaskOptions) -> None:
        self.task_class.default_options = value

    # -- enqueueing ----------------------------------------------------------------------------
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Result[R]:
        """Enqueue a call (or run it at once in immediate mode) and return its Result (None
        when the queue keeps no results).

        The keywords of :data:`~sqlq.options.CALL_KEYWORDS` are this call's settings, not
        arguments: ``add(1, 2, priority=5)``, ``add(1, 2, delay=60)``, ``add(1, 2, id='x')``
        (a type checker, which knows only the function's parameters, rejects them: use
        :meth:`schedule` in checked code).
        """
        if kwargs and not CALL_KEYWORDS.isdisjoint(kwargs):
            return cast('Result[R]', self.queue.enqueue(self._invocation(args, kwargs, 'call')))
        return cast('Result[R]', self.queue.enqueue(self.task_class(args, kwargs)))

    async def aenqueue(self, *args: P.args, **kwargs: P.kwargs) -> Result[R]:
        """The call, for asyncio code: the enqueue runs in the event loop's default executor
        (a thread), so that a storage that makes it wait (a locked SQLite file, a distant
        Redis server) never blocks the loop. A direct call is fine too: it takes tens of
        microseconds when the storage answers at once (README, "asyncio")."""
        import asyncio
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(self, *args, **kwargs))

    def s(self, *args: Any, **kwargs: Any) -> Task:
        """A Task for this call, not yet enqueued (for pipelines, groups and chords).

        Arguments may be incomplete: a pipeline stage or chord callback receives the rest.
        Call keywords (``priority``, ``delay``...) are taken as with a call.
        """
        if kwargs and not CALL_KEYWORDS.isdisjoint(kwargs):
            task = self._invocation(args, kwargs, 's')
            self.check_arguments(task.args, task.kwargs, partial=True)
            return task
        self.check_arguments(args, kwargs, partial=True)
        return self.task_class(args, kwargs)

    def _invocation(self, args: Tuple[Any, ...], kwargs: Dict[str, Any], how: str) -> Task:
        """The Task of a call whose ``kwargs`` hold call keywords (taken out of them)."""
        settings = {key: kwargs.pop(key) for key in CALL_KEYWORDS.intersection(kwargs)}
        return self._make(args, kwargs, '%s.%s' % (self.name, how), **settings)

    def _make(self, args: Tuple[Any, ...], kwargs: Dict[str, Any], where: str,
              eta: Union[_dt.datetime, Number, None] = None,
              delay: Union[Number, _dt.timedelta, None] = None, id: Optional[str] = None,
              unique_key: Optional[str] = None, **options: Any) -> Task:
        """A Task of this function with these settings, checked (TypeError naming ``where``)."""
        checked = check_options(options, where)
        for label, value in (('id', id), ('unique_key', unique_key)):
            if value is not None and not isinstance(value, str):
                raise TypeError('%s: %s must be a str, not %s'
                                % (where, label, type(value).__name__))
        return self.task_class(
            args, kwargs, id=id, eta=self.queue.resolve_eta(eta, delay), unique_key=unique_key,
            options=self.task_class.default_options.updated(checked))

    def schedule(self, args: Optional[Iterable[Any]] = None,
                 kwargs: Optional[Dict[str, Any]] = None,
                 eta: Union[_dt.datetime, Number, None] = None,
                 delay: Union[Number, _dt.timedelta, None] = None, id: Optional[str] = None,
                 unique_key: Optional[str] = None, **options: Any) -> Result[R]:
        """Enqueue a call to run at ``eta`` (a datetime or epoch seconds) or after ``delay``.

        ``options``: task options for this call (``priority``, ``retries``, ``retry_delay``,
        ``retry_backoff``, ``expires``, ``timeout``; see :class:`~sqlq.options.TaskOptions`).
        With ``unique_key``, while a task enqueued with the same key is pending, scheduled or
        running, this returns that task's Result instead of enqueueing another.
        """
        return cast('Result[R]', self.queue.enqueue(self._make(
            () if args is None else tuple(args), {} if kwargs is None else dict(kwargs),
            '%s.schedule' % self.name, eta, delay, id, unique_key, **options)))

    def map(self, it: Iterable[Any]) -> ResultGroup[R]:
        """Enqueue one call per item (a tuple is the argument list) in one transaction; their
        ResultGroup (None when the queue keeps no results, as with huey)."""
        items = it if isinstance(it, (list, tuple, range)) else list(it)
        with cycle_collector_paused(len(items)):
            # Each call's arguments as a plain tuple, as Task() makes them (a namedtuple item
            # is its fields).
            calls = [item if type(item) is tuple else tuple(item) if isinstance(item, tuple)
                     else (item,) for item in items]
            group = self.queue.enqueue_calls(self.task_class, calls)
            return group if self.queue.results else None  # type: ignore[return-value]

    def call_local(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Call the function in this process, bypassing the queue (an async function's
        coroutine, to await)."""
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
    def check_arguments(self, args: Tuple[Any, ...], kwargs: Dict[str, Any],
                        partial: bool = False) -> None:
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
            hint = ''
            if self._keyword_params:
                hint = ' (%s: task option keywords, which a call takes as options: pass %s ' \
                       'positionally)' % (', '.join(self._keyword_params),
                                          'it' if len(self._keyword_params) == 1 else 'them')
            raise TypeError('%s%s: %s%s' % (self.name, self._signature, exc, hint)) from None

    def __repr__(self) -> str:
        return '<TaskWrapper %s>' % self.registered_name
