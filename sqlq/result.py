"""Handles to task outcomes: Result, ResultGroup, and the Error/SKIPPED values stored for them.

``Result[R]`` and ``ResultGroup[R]`` are generic in the task's return type ``R`` (for an
``async def`` task, what its coroutine returns): ``add(1, 2)`` is a ``Result[int]``, its
``get(blocking=True)`` an ``int``, its ``get()`` an ``Optional[int]`` (None while not ready),
and ``await result`` an ``int``, woken by the storage's completion notification
(:mod:`sqlq.awaiting`).
"""
from __future__ import annotations

import datetime as _dt
import time
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    Generator,
    Generic,
    Iterator,
    List,
    Literal,
    Optional,
    Sequence,
    TypeVar,
    Union,
    overload,
)

from .exceptions import ResultTimeout, TaskException

if TYPE_CHECKING:  # pragma: no cover
    from .api import EnqueueResult, Queue
    from .task import Task

# What a result read returns when nothing is stored (distinct from a stored None).
from .storage.base import EMPTY  # noqa: E402

#: The task's return type.
R = TypeVar('R', covariant=True)


class Error:
    """Stored in place of a result when a task failed; ``metadata`` describes the failure."""

    def __init__(self, metadata: Dict[str, Any]) -> None:
        self.metadata = metadata

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Error) and other.metadata == self.metadata

    def __repr__(self) -> str:
        return '<Error: %s>' % self.metadata.get('error')


class _Skipped:
    """A chord entry for a member that did not run (revoked, expired, canceled)."""
    _instance: Optional['_Skipped'] = None

    def __new__(cls) -> '_Skipped':
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __reduce__(self) -> str:
        return 'SKIPPED'

    def __repr__(self) -> str:
        return 'SKIPPED'


SKIPPED = _Skipped()


class Result(Generic[R]):
    """The outcome of one enqueued task; read it with ``get()`` or by calling the Result, or
    from asyncio code with ``await result`` / ``await result.aget(timeout=...)``."""

    def __init__(self, queue: 'Queue', task: 'Task') -> None:
        self.queue = queue
        self.task = task
        self._result: Any = EMPTY

    @property
    def id(self) -> str:
        return self.task.id

    @overload
    def __call__(self, blocking: Literal[True], timeout: Optional[float] = None,
                 backoff: float = 1.15, max_delay: float = 1.0,
                 revoke_on_timeout: bool = False, preserve: bool = False) -> R: ...

    @overload
    def __call__(self, blocking: bool = False, timeout: Optional[float] = None,
                 backoff: float = 1.15, max_delay: float = 1.0,
                 revoke_on_timeout: bool = False, preserve: bool = False) -> Optional[R]: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.get(*args, **kwargs)

    def get_raw_result(self, blocking: bool = False, timeout: Optional[float] = None,
                       backoff: float = 1.15, max_delay: float = 1.0,
                       revoke_on_timeout: bool = False, preserve: bool = False) -> Any:
        """Like ``get`` but returns a stored Error instead of raising it."""
        if self._result is EMPTY:
            value = self.queue.get_raw(self.id, peek=preserve)
            if value is EMPTY and blocking:
                value = self._wait(timeout, backoff, max_delay, revoke_on_timeout, preserve)
            if value is EMPTY:
                return None
            self._result = value
        return self._result

    @overload
    def get(self, blocking: Literal[True], timeout: Optional[float] = None,
            backoff: float = 1.15, max_delay: float = 1.0, revoke_on_timeout: bool = False,
            preserve: bool = False) -> R: ...

    @overload
    def get(self, blocking: bool = False, timeout: Optional[float] = None,
            backoff: float = 1.15, max_delay: float = 1.0, revoke_on_timeout: bool = False,
            preserve: bool = False) -> Optional[R]: ...

    def get(self, blocking: bool = False, timeout: Optional[float] = None,
            backoff: float = 1.15, max_delay: float = 1.0, revoke_on_timeout: bool = False,
            preserve: bool = False) -> Any:
        """The task's return value (None while not ready).

        The stored value is consumed unless ``preserve``; the Result keeps it, so later calls
        return it again. ``blocking`` waits (up to ``timeout`` seconds, then ResultTimeout,
        revoking the task first if ``revoke_on_timeout``). A failed task raises TaskException.
        """
        value = self.get_raw_result(blocking, timeout, backoff, max_delay, revoke_on_timeout,
                                    preserve)
        if isinstance(value, Error):
            raise TaskException(value.metadata)
        return value

    def _wait(self, timeout: Optional[float], backoff: float, max_delay: float,
              revoke_on_timeout: bool, preserve: bool) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.1
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                if revoke_on_timeout:
                    self.revoke()
                raise ResultTimeout('%s timed out after %ss' % (self.task, timeout))
            # Woken early by any commit, so a short poll isn't needed for promptness.
            self.queue.wait_for_change(delay if remaining is None else min(delay, remaining),
                                       topic='data')
            value = self.queue.get_raw(self.id, peek=preserve)
            if value is not EMPTY:
                return value
            delay = min(delay * backoff, max_delay)

    async def aget(self, timeout: Optional[float] = None, preserve: bool = False,
                   max_delay: float = 1.0) -> R:
        """The task's return value, awaited: ``get(blocking=True)`` for asyncio code (other
        coroutines run meanwhile). Woken by the storage's completion notification, as a
        blocking ``get`` is, through one helper thread per storage shared by every waiting
        coroutine (:mod:`sqlq.awaiting`); ``max_delay`` bounds how late a result written by a
        program that sends no notification is seen (at most 1 s). ResultTimeout after
        ``timeout`` seconds, TaskException if the task failed; cancelling the wait leaves the
        result stored."""
        from .awaiting import aget_result
        value: R = await aget_result(self, max_delay=max_delay, preserve=preserve,
                                     timeout=timeout)
        return value

    def __await__(self) -> Generator[Any, None, R]:
        """``await result``: :meth:`aget` without a timeout."""
        return self.aget().__await__()

    def is_ready(self) -> bool:
        """True once the task's result (or error) is stored: it is then read into this handle
        (as with huey: from then on ``get`` returns it without reading storage again)."""
        if self._result is EMPTY:
            value = self.queue.get_raw(self.id)
            if value is EMPTY:
                return False
            self._result = value
        return True

    def revoke(self, revoke_once: bool = True) -> None:
        self.queue.revoke(self.task, revoke_once=revoke_once)

    def restore(self) -> bool:
        return self.queue.restore(self.task)

    def is_revoked(self) -> bool:
        return self.queue.is_revoked(self.task, peek=True)

    def reschedule(self, eta: Union[_dt.datetime, float, None] = None,
                   delay: Union[float, _dt.timedelta, None] = None, expires: Any = None,
                   priority: Optional[int] = None,
                   preserve_pipeline: bool = True) -> 'EnqueueResult':
        """Revoke this invocation and enqueue a copy (new id) at ``eta``/after ``delay``."""
        return self.queue.reschedule(self.task, eta, delay, expires, priority, preserve_pipeline)

    def reset(self) -> None:
        """Forget the value this handle read, so the next ``get`` reads storage again."""
        self._result = EMPTY

    def __repr__(self) -> str:
        return '<Result: task %s>' % self.id


class ResultGroup(Generic[R]):
    """Results of several tasks (a pipeline, ``map``, ``group`` or ``enqueue_many``); from
    asyncio code, ``await group`` / ``await group.aget()``. ``R``: the members' return type
    (``add.map(...)`` is a ``ResultGroup[int]``; a pipeline's or group's members differ:
    ``ResultGroup[Any]``)."""

    def __init__(self, results: Sequence[Result[R]]) -> None:
        self._results: List[Result[R]] = list(results)

    @overload
    def get(self, blocking: Literal[True], timeout: Optional[float] = None,
            backoff: float = 1.15, max_delay: float = 1.0, revoke_on_timeout: bool = False,
            preserve: bool = False) -> List[R]: ...

    @overload
    def get(self, blocking: bool = False, timeout: Optional[float] = None,
            backoff: float = 1.15, max_delay: float = 1.0, revoke_on_timeout: bool = False,
            preserve: bool = False) -> List[Optional[R]]: ...

    def get(self, *args: Any, **kwargs: Any) -> Any:
        """``Result.get`` of every member, in order, with the same arguments."""
        return [result.get(*args, **kwargs) for result in self._results]

    __call__ = get

    async def aget(self, timeout: Optional[float] = None, preserve: bool = False,
                   max_delay: float = 1.0) -> List[R]:
        """Every member's value, in order, awaited together (see :meth:`Result.aget`); the
        first failure is raised (TaskException) and the other members are no longer
        awaited; ResultTimeout if one is not ready after ``timeout`` seconds."""
        from .awaiting import aget_result_group
        values: List[R] = await aget_result_group(self, max_delay=max_delay,
                                                  preserve=preserve, timeout=timeout)
        return values

    def __await__(self) -> Generator[Any, None, List[R]]:
        """``await group``: :meth:`aget` without a timeout."""
        return self.aget().__await__()

    def as_completed(self, backoff: float = 1.15, max_delay: float = 1.0,
                     timeout: Optional[float] = None) -> Iterator[R]:
        """Yield members' values in completion order (TaskException for a failed one)."""
        pending = list(self._results)
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.05
        while pending:
            ready = [r for r in pending if r.is_ready()]
            for result in ready:
                pending.remove(result)
                yield result.get(blocking=True)  # stored: returned at once
            if ready or not pending:
                delay = 0.05
                continue
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise ResultTimeout('%d results not ready after %ss' % (len(pending), timeout))
            pending[0].queue.wait_for_change(
                delay if remaining is None else min(delay, remaining), topic='data')
            delay = min(delay * backoff, max_delay)

    @overload
    def __getitem__(self, index: int) -> R: ...

    @overload
    def __getitem__(self, index: slice) -> List[R]: ...

    def __getitem__(self, index: Union[int, slice]) -> Any:
        """The value of the ``index``-th task (a list of values for a slice), as with huey:
        waits until it is ready; TaskException if it failed. Iterating gives the Results."""
        if isinstance(index, slice):
            return [result.get(blocking=True) for result in self._results[index]]
        return self._results[index].get(blocking=True)

    @property
    def results(self) -> List[Result[R]]:
        """The Result of each task, in order."""
        return self._results

    def __len__(self) -> int:
        return len(self._results)

    def __iter__(self) -> Iterator[Result[R]]:
        return iter(self._results)

    def __repr__(self) -> str:
        return '<ResultGroup: %d results>' % len(self._results)
