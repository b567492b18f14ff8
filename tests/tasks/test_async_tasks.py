"""``async def`` tasks outside the asyncio worker: ``@queue.task()`` accepts them, and a run
(``queue.execute``: what thread and process workers do, immediate mode) awaits the coroutine
on an event loop of its own, cancelling it at its timeout. The asyncio worker:
tests/consumer/test_asyncio_worker.py."""
from __future__ import annotations

import asyncio
import contextvars
import logging

import pytest

import sqlq._aio
from sqlq import ConfigurationError, TaskException, TaskTimeout
from sqlq.signals import SIGNAL_COMPLETE, SIGNAL_ERROR, SIGNAL_RETRYING, SIGNAL_TIMEOUT
from tests._helpers import drain


def test_async_def_is_accepted_and_its_coroutine_awaited(queue):
    """The value a run stores is what the coroutine returns, not the coroutine (which could
    not be pickled: the failure of every run before)."""
    @queue.task()
    async def add(a, b):
        await asyncio.sleep(0)
        return a + b

    result = add(1, 2)
    assert drain(queue) == 1
    assert result.get() == 3
    assert add.task_class.is_async


def test_periodic_and_context_tasks_may_be_async(queue):
    entered = []

    class Ctx:
        def __enter__(self):
            entered.append('with')
            return 'ctx'

        def __exit__(self, *exc):
            return False

    class AsyncCtx:
        async def __aenter__(self):
            entered.append('async with')
            return 'actx'

        async def __aexit__(self, *exc):
            return False

    @queue.periodic_task(lambda dt: False)
    async def tick():
        return 'tick'

    @queue.context_task(Ctx(), as_argument=True)
    async def plain(ctx, x):
        return (ctx, x)

    @queue.context_task(AsyncCtx(), as_argument=True)
    async def awaited(ctx, x):
        return (ctx, x)

    first, second = plain(1), awaited(2)
    assert drain(queue) == 2
    assert first.get() == ('ctx', 1) and second.get() == ('actx', 2)
    assert entered == ['with', 'async with']
    assert tick.task_class.is_async


def test_async_generator_function_is_still_refused(queue):
    with pytest.raises(ConfigurationError, match='async generator'):
        @queue.task()
        async def stream():
            yield 1


def test_a_failing_coroutine_is_retried_then_stored_as_its_error(queue):
    seen = []
    queue.signal()(lambda signal, task, *extra: seen.append(signal))
    runs = []

    @queue.task(retries=1)
    async def flaky():
        runs.append(1)
        raise ValueError('run %d' % len(runs))

    result = flaky()
    assert drain(queue) == 2
    with pytest.raises(TaskException) as info:
        result.get()
    assert info.value.metadata['error'] == "ValueError('run 2')"
    assert seen.count(SIGNAL_ERROR) == 2 and seen.count(SIGNAL_RETRYING) == 1


def test_timeout_cancels_the_coroutine_for_real(queue):
    """The coroutine is cancelled at its timeout (its ``finally`` runs), the run fails with
    TaskTimeout and SIGNAL_TIMEOUT is sent -- with thread workers too, where a plain
    function's timeout is only cooperative."""
    seen = []
    queue.signal()(lambda signal, task, *extra: seen.append(signal))
    cancelled = []

    @queue.task(timeout=0.1)
    async def slow():
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append('cancelled')
            raise
        return 'slept'

    result = slow()
    drain(queue)
    assert cancelled == ['cancelled']
    with pytest.raises(TaskException, match='TaskTimeout'):
        result.get()
    assert SIGNAL_TIMEOUT in seen and SIGNAL_COMPLETE not in seen


def test_a_coroutine_ignoring_its_cancellation_is_cancelled_again(queue, monkeypatch, caplog):
    """A coroutine that swallows the CancelledError is cancelled again (with a warning) until
    it ends; its value is discarded: the run timed out."""
    monkeypatch.setattr(sqlq._aio, 'RECANCEL_INTERVAL', 0.05)
    swallowed = []

    @queue.task(timeout=0.05)
    async def stubborn():
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            swallowed.append(1)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            swallowed.append(2)
        return 'finished anyway'

    result = stubborn()
    with caplog.at_level(logging.WARNING, logger='sqlq'):
        drain(queue)
    assert swallowed == [1, 2]
    with pytest.raises(TaskException, match='TaskTimeout'):
        result.get()
    assert 'ignores the cancellation of its timeout' in caplog.text


def test_a_context_task_reads_its_delivery_and_time_left_inside_the_coroutine(make_queue):
    queue = make_queue()

    @queue.task(context=True, timeout=30)
    async def introspect(task=None):
        await asyncio.sleep(0)
        return task.attempts, 0 < task.time_remaining <= 30

    result = introspect()
    drain(queue)
    assert result.get() == (1, True)


def test_immediate_mode_runs_the_coroutine_at_call_time(make_queue):
    """Immediate mode, from synchronous code and from a coroutine (where an event loop
    already runs: the run happens in a helper thread, with the caller's context)."""
    queue = make_queue(immediate=True)
    var = contextvars.ContextVar('var', default='unset')

    @queue.task()
    async def read(x):
        await asyncio.sleep(0)
        return x, var.get()

    assert read(1).get() == (1, 'unset')

    async def main():
        var.set('caller')
        return read(2).get()

    assert asyncio.run(main()) == (2, 'caller')


def test_run_coroutine_raises_the_coroutines_error_from_a_running_loop():
    async def boom():
        raise KeyError('k')

    async def main():
        return sqlq._aio.run_coroutine(boom(), None, 'boom')

    with pytest.raises(KeyError):
        asyncio.run(main())
    with pytest.raises(TaskTimeout):
        sqlq._aio.run_coroutine(asyncio.sleep(5), 0.01, 'sleep')
