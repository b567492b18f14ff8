"""Running a task's coroutine: with its timeout enforced by cancellation, on a running event
loop (the asyncio worker) or on a fresh one per run (thread and process workers, immediate
mode).

Standard library only (bottom layer): the task layer and the workers use it. asyncio is
imported when a coroutine first runs, not with sqlq (it costs tens of milliseconds).
"""
from __future__ import annotations

import contextvars
import inspect
import logging
import threading
from typing import TYPE_CHECKING, Any, Awaitable, Callable, List, Optional, Tuple

from .exceptions import TaskTimeout

if TYPE_CHECKING:  # pragma: no cover
    import asyncio

__all__ = ['is_async_function', 'run_with_timeout', 'run_coroutine', 'RECANCEL_INTERVAL']

logger = logging.getLogger('sqlq')

#: A coroutine still running this many seconds after its timeout cancelled it (it caught the
#: CancelledError and went on) is cancelled again, and a warning logged, until it ends.
RECANCEL_INTERVAL = 1.0


def is_async_function(func: Callable[..., Any]) -> bool:
    """True for an ``async def`` function (or a partial of one): calling it returns a
    coroutine, which a task run awaits."""
    return inspect.iscoroutinefunction(func)


async def run_with_timeout(coro: Awaitable[Any], timeout: Optional[float], what: object) -> Any:
    """Await ``coro``; past ``timeout`` seconds cancel it and raise TaskTimeout once it ended.

    The cancellation is real: the coroutine gets CancelledError at the ``await`` it is
    suspended in, and its ``finally`` blocks and ``async with`` exits run. One that catches the
    CancelledError and goes on is cancelled again every :data:`RECANCEL_INTERVAL` seconds (a
    warning each time); its value, if it returns one, is discarded: the run timed out. If the
    caller is cancelled meanwhile, the coroutine is cancelled too (and awaited) before the
    caller's CancelledError propagates.
    """
    if not timeout:
        return await coro
    import asyncio
    inner = asyncio.ensure_future(coro)
    try:
        done, _ = await asyncio.wait((inner,), timeout=timeout)
        if done:
            return inner.result()
        inner.cancel()
        while True:
            done, _ = await asyncio.wait((inner,), timeout=RECANCEL_INTERVAL)
            if done:
                break
            logger.warning('%s ignores the cancellation of its timeout (%ss): cancelling again',
                           what, timeout)
            inner.cancel()
    except asyncio.CancelledError:
        inner.cancel()
        await asyncio.wait((inner,))
        _consume(inner)
        raise
    _consume(inner)
    raise TaskTimeout('%s exceeded its timeout of %ss' % (what, timeout))


def _consume(future: 'asyncio.Future[Any]') -> None:
    """Retrieve a finished future's outcome, so that asyncio does not log it as unretrieved."""
    if not future.cancelled():
        future.exception()


def run_coroutine(coro: Awaitable[Any], timeout: Optional[float], what: object) -> Any:
    """Run ``coro`` to completion from synchronous code, on an event loop of its own
    (``asyncio.run``: one per run), with its timeout (see :func:`run_with_timeout`).

    Called where an event loop already runs in this thread (a task called in immediate mode
    from a coroutine), the run happens in a helper thread -- with the caller's context
    variables -- while the calling thread waits for it.
    """
    import asyncio
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run_with_timeout(coro, timeout, what))
    context = contextvars.copy_context()
    outcome: List[Tuple[bool, Any]] = []

    def target() -> None:
        try:
            outcome.append((True, context.run(asyncio.run, run_with_timeout(coro, timeout, what))))
        except BaseException as exc:  # handed to the calling thread
            outcome.append((False, exc))

    thread = threading.Thread(target=target, name='sqlq-immediate-coroutine', daemon=True)
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if ok:
        return value
    raise value
