"""The task model: a Task is one invocation of a registered function, with its options and
pipeline links.

Each decorated function gets its own plain Task subclass holding the function and the task's
default options, as with huey (see :mod:`sqlq.wrapper`). What happens to one delivery of a task
(its claim, attempts, start time) is kept apart, in :class:`~sqlq.delivery.Delivery`.
"""
from __future__ import annotations

import datetime as _dt
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Dict,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
    Type,
    Union,
)

from . import _accel
from ._aio import run_coroutine
from .delivery import running_delivery
from .exceptions import TaskTimeout
from .options import OPTION_NAMES, OptionAttributes, TaskOptions, check_options

if TYPE_CHECKING:  # pragma: no cover
    from .api import Queue
    from .delivery import Delivery
    from .wrapper import TaskWrapper

__all__ = ['Task', 'PeriodicTask', 'as_task', 'fresh_tasks']


class Task(OptionAttributes):
    """One invocation of a task function, with its options and pipeline links.

    Options (``retries``, ``priority``...) are read and set as attributes, as with huey; they
    live in :attr:`options`. Options not given default to the class's ``default_options``.
    """

    #: The task's name, as with huey: the function's ``__name__`` (or the ``name=`` given).
    name: ClassVar[str] = 'sqlq.task'
    #: What the queue registers the task under and its messages carry: ``module.qualname``
    #: of the function (or the ``name=`` given). A subclass that sets only ``name`` is
    #: registered under it.
    registered_name: ClassVar[str] = 'sqlq.task'
    queue: ClassVar[Optional['Queue']] = None
    context: ClassVar[bool] = False
    periodic: ClassVar[bool] = False
    #: The options an invocation gets unless given others.
    default_options: ClassVar[TaskOptions] = TaskOptions()
    #: Delete the task when a worker takes it (huey's delivery): a crash loses it instead
    #: of running it twice. For work that must never run twice.
    at_most_once: ClassVar[bool] = False
    #: A second enqueue of the same call (same arguments) while the first is pending or
    #: running returns the first one's Result instead of enqueueing again.
    unique: ClassVar[bool] = False
    #: The function is an ``async def``: a call returns a coroutine, which a run awaits (see
    #: :meth:`execute`; the asyncio worker awaits :meth:`call` on its own event loop).
    is_async: ClassVar[bool] = False
    #: The trace context its message carries (see :mod:`sqlq.tracing`), None if none: set on
    #: the instance when it is enqueued with tracing on, or decoded from a message.
    trace_context: Optional[bytes] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if 'name' in cls.__dict__ and 'registered_name' not in cls.__dict__:
            cls.registered_name = cls.name
        # A hand-written subclass may spell its defaults as huey does: default_retries = 3.
        given = {name: cls.__dict__['default_' + name] for name in OPTION_NAMES
                 if 'default_' + name in cls.__dict__}
        if given:
            cls.default_options = cls.default_options.updated(
                check_options(given, 'task %s' % cls.registered_name))

    def __init__(self, args: Optional[Iterable[Any]] = None,
                 kwargs: Optional[Dict[str, Any]] = None, id: Optional[str] = None,
                 eta: Optional[_dt.datetime] = None, *, options: Optional[TaskOptions] = None,
                 on_complete: Optional['Task'] = None, on_error: Optional['Task'] = None,
                 expires_resolved: Optional[_dt.datetime] = None,
                 chord_config: Optional[Dict[str, Any]] = None,
                 unique_key: Optional[str] = None, **option_values: Any) -> None:
        self.args: Tuple[Any, ...] = () if args is None else tuple(args)
        self.kwargs: Dict[str, Any] = {} if kwargs is None else dict(kwargs)
        self.id: str = id if id is not None else _accel.new_task_id()
        self.eta = eta
        base = self.default_options if options is None else options
        self.options = base.updated(
            check_options(option_values, 'task %s' % self.registered_name)) \
            if option_values else base
        #: ``expires`` as an instant, once the enqueue resolved it.
        self.expires_resolved = expires_resolved
        self.on_complete = on_complete
        self.on_error = on_error
        self.chord_config = chord_config
        self.unique_key = unique_key

    # -- running -------------------------------------------------------------------------------
    @staticmethod
    def func(*args: Any, **kwargs: Any) -> Any:  # replaced per task class
        raise NotImplementedError

    @staticmethod
    def check_call(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> None:  # per task class
        """TypeError if ``args``/``kwargs`` can't be passed to the task function."""

    def call(self) -> Any:
        """Call the task function with this invocation's arguments: its value, or for an
        async function the coroutine (not yet run)."""
        if self.context:
            return self.func(*self.args, task=self, **self.kwargs)
        return self.func(*self.args, **self.kwargs)

    def execute(self) -> Any:
        """Run the task function with this invocation's arguments; an async function's
        coroutine runs to its end on an event loop of its own (``asyncio.run``), cancelled at
        its timeout (TaskTimeout)."""
        if self.is_async:
            return run_coroutine(self.call(), self.options.timeout, self)
        if self.context:
            return self.func(*self.args, task=self, **self.kwargs)
        return self.func(*self.args, **self.kwargs)

    @property
    def delivery(self) -> Optional['Delivery']:
        """This invocation's current delivery: the claim it runs under (read inside the
        running task), or the claim ``queue.dequeue()`` returned it with, until it is
        executed; None otherwise."""
        delivery = running_delivery()
        if delivery is not None and delivery.task is self:
            return delivery
        queue = self.queue
        return None if queue is None else queue.executor.pending_delivery(self)

    @property
    def attempts(self) -> int:
        """Claims of this invocation's message so far, its current delivery's included (0 when
        it is not delivered)."""
        delivery = self.delivery
        return 0 if delivery is None else delivery.attempts

    @property
    def receipt(self) -> Any:
        """The storage receipt of its current delivery's claim (None if none)."""
        delivery = self.delivery
        return None if delivery is None else delivery.receipt

    @property
    def time_remaining(self) -> Optional[float]:
        """Seconds left before ``timeout``, read inside the running task (None without a
        timeout, or outside its run)."""
        delivery = running_delivery()
        if delivery is None or delivery.task is not self:
            return None
        return delivery.time_remaining()

    @property
    def is_timed_out(self) -> bool:
        remaining = self.time_remaining
        return remaining is not None and remaining <= 0

    def check_timeout(self) -> None:
        """Raise TaskTimeout if the task has run past its timeout (cooperative check)."""
        if self.is_timed_out:
            raise TaskTimeout('%s exceeded its timeout of %ss' % (self, self.options.timeout))

    # -- pipelines -----------------------------------------------------------------------------
    def then(self, task: Union['Task', 'TaskWrapper[Any, Any]'], *args: Any,
             **kwargs: Any) -> 'Task':
        """Run ``task`` after this one succeeds, passing this one's result as its last argument
        (a tuple: as several; a dict: as keyword arguments not given otherwise).

        ``args``/``kwargs`` are added to the follower's own (to a Task instance's as well).
        """
        follower = as_task(task, args, kwargs)
        if self.on_complete is not None:
            self.on_complete.then(follower)
        else:
            self.on_complete = follower
        return self

    def error(self, task: Union['Task', 'TaskWrapper[Any, Any]'], *args: Any,
              **kwargs: Any) -> 'Task':
        """Run ``task`` if this one fails for good, passing the exception as its last argument."""
        handler = as_task(task, args, kwargs)
        if self.on_error is not None:
            self.on_error.error(handler)
        else:
            self.on_error = handler
        return self

    def extend_data(self, data: Any) -> None:
        """Add a parent's result to this task's arguments (tuple: extend; dict: the keyword
        arguments this task was not given explicitly, which win, as with huey)."""
        if data is None or data == ():
            return
        if isinstance(data, tuple):
            self.args += data
        elif isinstance(data, dict):
            self.kwargs = {**data, **self.kwargs}
        else:
            self.args += (data,)

    def chain(self) -> List['Task']:
        """This task and its ``then`` followers, in order."""
        tasks: List[Task] = []
        task: Optional[Task] = self
        while task is not None:
            tasks.append(task)
            task = task.on_complete
        return tasks

    # -- identity ------------------------------------------------------------------------------
    def __repr__(self) -> str:
        parts = ['%s: %s' % (self.registered_name, self.id)]
        if self.eta:
            parts.append('@%s' % self.eta)
        options = self.options
        if options.priority:
            parts.append('p=%s' % options.priority)
        if options.retries:
            parts.append('%s retries' % options.retries)
        return ' '.join(parts)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Task) and self.id == other.id
                and self.registered_name == other.registered_name and self.eta == other.eta)

    def __hash__(self) -> int:
        return hash((self.id, self.registered_name))


class PeriodicTask(Task):
    """A task the consumer enqueues whenever ``validate_datetime`` accepts the current minute."""

    periodic: ClassVar[bool] = True

    @staticmethod
    def validate_datetime(timestamp: _dt.datetime) -> bool:  # replaced per task class
        return False


def fresh_tasks(task_class: Type[Task], calls: Sequence[Tuple[Any, ...]],
                ids: Sequence[str]) -> List[Task]:
    """What ``task_class(args, {}, id=id)`` makes for each argument tuple (a plain ``tuple``)
    of ``calls`` and its id, without a call of ``Task.__init__`` per task (``map``'s batch;
    for a class that keeps ``Task.__init__``)."""
    options = task_class.default_options
    new = object.__new__
    tasks: List[Task] = []
    append = tasks.append
    for args, id in zip(calls, ids):
        task = new(task_class)
        # The attributes of Task.__init__, in its order (tests/tasks/test_map.py checks).
        task.args = args
        task.kwargs = {}
        task.id = id
        task.eta = None
        task.options = options
        task.expires_resolved = None
        task.on_complete = None
        task.on_error = None
        task.chord_config = None
        task.unique_key = None
        append(task)
    return tasks


def as_task(task: Union[Task, 'TaskWrapper[Any, Any]'], args: Tuple[Any, ...],
            kwargs: Dict[str, Any]) -> Task:
    """``task`` as a Task instance: a wrapper's ``s(*args, **kwargs)``, or the instance itself
    with ``args`` appended to its arguments and ``kwargs`` merged into its keyword arguments
    (as huey does)."""
    if isinstance(task, Task):
        if args:
            task.args += tuple(args)
        if kwargs:
            task.kwargs.update(kwargs)
        return task
    make = getattr(task, 's', None)
    if make is None or not callable(make):
        raise TypeError('expected a task (decorated function) or Task, not %s'
                        % type(task).__name__)
    result: Task = make(*args, **kwargs)
    return result
