"""Awaiting task results from asyncio code: ``await result``, ``await result.aget(...)``,
``await group.aget()`` (:mod:`sqlq.result`), and huey's ``aget_result`` /
``aget_result_group`` (:mod:`sqlq.contrib.asyncio`), all through :func:`aget_result`.

``await aget_result(result)`` is ``result.get(blocking=True)`` for a coroutine: other
coroutines run meanwhile. ``await aget_result_group(group)`` awaits every member of a
ResultGroup at once and returns their values in order.

Nothing polls on the event loop. One helper thread per storage, shared by every coroutine
waiting on it, blocks in the storage's completion notification
(``wait_for_change(topic='data')``: a result written by any process wakes it) and then looks
up, in one read, which awaited results are now stored; their coroutines wake and read them.
A writer that sends no notification (another program) is noticed within ``max_delay``
seconds (one at most: :data:`HELPER_WAIT`), when the thread looks again anyway. The thread
exits at its next wake-up once no coroutine waits, within :data:`HELPER_WAIT` seconds, or
when the storage is closed.

Cancelling a waiting coroutine (``task.cancel()``, ``asyncio.wait_for``) leaves nothing
behind: the result stays stored for a later read, and the coroutine no longer counts for the
helper thread.
"""
from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set

from .exceptions import ResultTimeout

if TYPE_CHECKING:  # pragma: no cover
    from .result import Result, ResultGroup
    from .storage.base import Storage

__all__ = ['aget_result', 'aget_result_group']

#: The longest the helper thread blocks in one wait for a notification (seconds): it looks
#: for the awaited results again then, and exits if no coroutine waits any more.
HELPER_WAIT = 1.0
#: Guards every watch's waiters and the registry of watches.
_lock = threading.Lock()
#: id(storage) -> its watch, while coroutines wait on that storage.
_watches: Dict[int, '_Watch'] = {}


class _Waiter:
    """One waiting coroutine: the result key it waits for and the event that wakes it."""

    __slots__ = ('key', 'loop', 'event', 'max_delay', 'error')

    def __init__(self, key: str, max_delay: float) -> None:
        self.key = key
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()
        self.max_delay = max_delay
        #: An error of the storage the helper thread ran into, raised by the coroutine.
        self.error: Optional[BaseException] = None

    def wake(self, error: Optional[BaseException] = None) -> bool:
        """Called from the helper thread; False if the waiter's event loop is closed (nobody
        awaits it any more)."""
        if error is not None:
            self.error = error
        try:
            self.loop.call_soon_threadsafe(self.event.set)
        except RuntimeError:
            return False
        return True


class _Watch:
    """The coroutines waiting on one storage, and the helper thread that wakes them."""

    def __init__(self, storage: 'Storage') -> None:
        self.storage = storage
        self.waiters: Set[_Waiter] = set()
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name='sqlq-aget-result %r' % (storage.name,))

    def _run(self) -> None:
        storage = self.storage
        while True:
            with _lock:
                # A coroutine whose event loop was closed under it never unregisters.
                self.waiters.difference_update([waiter for waiter in self.waiters
                                                if waiter.loop.is_closed()])
                if not self.waiters:
                    del _watches[id(storage)]
                    return
                waiters = list(self.waiters)
            try:
                found = storage.peek_many(sorted({waiter.key for waiter in waiters}))
                gone = [waiter for waiter in waiters
                        if waiter.key in found and not waiter.wake()]
                if gone:
                    with _lock:
                        self.waiters.difference_update(gone)
                # Race-free: a result written after the lookup above ends this wait at once.
                wait = min([HELPER_WAIT] + [waiter.max_delay for waiter in waiters])
                storage.wait_for_change(wait, 'data')
            except Exception as exc:  # the storage failed (closed, unreachable): tell them
                with _lock:
                    self.waiters.difference_update(waiters)
                for waiter in waiters:
                    waiter.wake(exc)


def _watch(storage: 'Storage', waiter: _Waiter) -> _Watch:
    with _lock:
        watch = _watches.get(id(storage))
        if watch is None:
            watch = _watches[id(storage)] = _Watch(storage)
            watch.thread.start()
        watch.waiters.add(waiter)
    return watch


def _unwatch(watch: _Watch, waiter: _Waiter) -> None:
    with _lock:
        watch.waiters.discard(waiter)


def _read(result: 'Result[Any]', preserve: bool) -> bool:
    """Read the result into its handle if it is stored; True once the handle holds it."""
    return result.get_raw_result(preserve=preserve) is not None or result.is_ready()


async def aget_result(result: 'Result[Any]', backoff: float = 1.15, max_delay: float = 1.0,
                      preserve: bool = False, timeout: Optional[float] = None) -> Any:
    """The task's return value, awaited: ``result.get(blocking=True)`` for asyncio code.

    Raises TaskException if the task failed, ResultTimeout after ``timeout`` seconds. The
    stored value is consumed unless ``preserve``. ``max_delay``: the longest a result written
    without a notification can go unnoticed (at most :data:`HELPER_WAIT`). ``backoff`` is
    accepted for huey compatibility (nothing polls).
    """
    if _read(result, preserve):
        return result.get(preserve=preserve)
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    waiter = _Waiter(result.id, max(float(max_delay), 0.001))
    watch = _watch(result.queue.storage, waiter)
    try:
        while True:
            waiter.event.clear()
            if _read(result, preserve):  # after clear(): a wake from now on is not lost
                return result.get(preserve=preserve)
            if waiter.error is not None:
                raise waiter.error
            if deadline is None:
                await waiter.event.wait()
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ResultTimeout('%s timed out after %ss' % (result.task, timeout))
            try:
                await asyncio.wait_for(waiter.event.wait(), remaining)
            except asyncio.TimeoutError:
                pass  # read once more, then time out
    finally:
        _unwatch(watch, waiter)


async def aget_result_group(group: 'ResultGroup[Any]', *args: Any, **kwargs: Any) -> List[Any]:
    """The values of every member of ``group``, in order, awaited together (the arguments
    are :func:`aget_result`'s). The first failure is raised, and the other members are no
    longer awaited."""
    members = [asyncio.ensure_future(aget_result(result, *args, **kwargs))
               for result in group]
    try:
        return list(await asyncio.gather(*members))
    finally:
        for member in members:
            member.cancel()  # no-op for the finished ones
