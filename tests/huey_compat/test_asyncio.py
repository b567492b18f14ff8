"""asyncio helpers as huey's ``huey.contrib.asyncio``: ``aget_result`` and
``aget_result_group``, woken by the storage's completion notification rather than polling,
cancellation-safe and leaving no thread behind."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

import sqlq.awaiting
from sqlq import ResultTimeout, TaskException
from sqlq.contrib.asyncio import aget_result, aget_result_group
from tests._helpers import drain, wait_for

HELPER = 'sqlq-aget-result'


def helper_threads():
    return [t for t in threading.enumerate() if t.name.startswith(HELPER)]


def no_helper_thread():
    return not helper_threads()


#: Longest a previous test's helper thread may take to exit: it leaves at its next wake-up,
#: within HELPER_WAIT seconds -- which a test below raises to 5 s; a bound of 5 s here failed
#: when no write came to wake it sooner.
HELPER_EXIT_BOUND = 15


@pytest.fixture(autouse=True)
def no_helper_left():
    """Each test starts without a helper thread (a previous test's may still be exiting)."""
    wait_for(no_helper_thread, HELPER_EXIT_BOUND, "the previous test's helper thread to exit")
    yield


@pytest.fixture
def add(queue):
    @queue.task()
    def add(a, b):
        return a + b

    return add


def test_aget_result_awaits_the_value_while_other_coroutines_run(queue, add, later):
    """huey: ``await aget_result(result)`` returns the task's value without blocking the
    event loop."""
    result = add(1, 2)
    ticks = []

    async def ticker():
        while True:
            ticks.append(1)
            await asyncio.sleep(0.01)

    async def main():
        tick = asyncio.ensure_future(ticker())
        later(0.2, drain, queue)
        try:
            return await aget_result(result)
        finally:
            tick.cancel()

    assert asyncio.run(main()) == 3
    assert len(ticks) >= 5


def test_aget_result_is_woken_by_the_completion_not_by_polling(queue, add, monkeypatch, later):
    """sqlq: the wait ends on the storage's notification, well before the helper thread's
    fallback re-check (for writers that send none) would end it."""
    monkeypatch.setattr(sqlq.awaiting, 'HELPER_WAIT', 5.0)
    result = add(2, 3)

    async def main():
        later(0.1, drain, queue)
        started = time.monotonic()
        value = await aget_result(result, max_delay=60)
        return value, time.monotonic() - started

    value, waited = asyncio.run(main())
    assert value == 5
    assert waited < 4           # a re-check would come after 5 s


def test_concurrent_waiters_share_one_helper_thread(queue, add, later):
    """sqlq: every coroutine waiting on a storage is served by one helper thread."""
    results = [add(i, i) for i in range(5)]
    seen = []

    async def main():
        waits = asyncio.gather(*(aget_result(r) for r in results))
        await asyncio.sleep(0.1)
        seen.append(len(helper_threads()))
        later(0, drain, queue)
        return await waits

    assert asyncio.run(main()) == [0, 2, 4, 6, 8]
    assert seen == [1]


def test_aget_result_raises_the_tasks_error(queue, later):
    """huey: a failed task raises TaskException from aget_result."""
    @queue.task()
    def bad():
        raise ValueError('boom')

    result = bad()

    async def main():
        later(0.05, drain, queue)
        return await aget_result(result)

    with pytest.raises(TaskException) as info:
        asyncio.run(main())
    assert info.value.metadata['error'] == "ValueError('boom')"


def test_aget_result_returns_at_once_when_ready_and_honours_preserve(queue, add):
    """huey: a result already stored is returned at once; ``preserve=True`` leaves it
    stored, the default consumes it."""
    result = add(5, 5)
    drain(queue)
    assert asyncio.run(aget_result(result, preserve=True)) == 10
    assert queue.result(result.id, preserve=True) == 10
    fresh = add(1, 1)
    drain(queue)
    assert asyncio.run(aget_result(fresh)) == 2
    assert queue.result(fresh.id) is None
    assert no_helper_thread()                  # never needed one


def test_aget_result_timeout_raises_result_timeout(queue, add):
    """huey: ``timeout=`` ends the wait with ResultTimeout; the task still runs later."""
    result = add(1, 1)
    with pytest.raises(ResultTimeout):
        asyncio.run(aget_result(result, timeout=0.2))
    drain(queue)
    assert result.get() == 2


def test_cancelled_wait_loses_no_result_and_leaves_no_thread(queue, add):
    """sqlq: cancelling a waiting aget_result leaves the result stored for a later read and
    the helper thread ends."""
    result = add(4, 4)

    async def main():
        waiting = asyncio.ensure_future(aget_result(result))
        await asyncio.sleep(0.1)
        assert helper_threads()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    asyncio.run(main())
    drain(queue)
    assert result.get() == 8


def test_wait_for_around_aget_result_cancels_cleanly(queue, add):
    """sqlq: asyncio.wait_for() timing out an aget_result is a clean cancellation."""
    result = add(3, 3)

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(aget_result(result), 0.1)

    asyncio.run(main())
    drain(queue)
    assert asyncio.run(aget_result(result)) == 6


def test_aget_result_group_returns_every_value_in_order(queue, add, later):
    """huey: ``await aget_result_group(group)`` returns the members' values in order."""
    group = add.map([(1, 1), (2, 2), (3, 3)])

    async def main():
        later(0.1, drain, queue)
        return await aget_result_group(group)

    assert asyncio.run(main()) == [2, 4, 6]


def test_aget_result_group_raises_the_first_error_and_stops_waiting(queue, add):
    """huey: a failed member raises TaskException; sqlq stops awaiting the other members
    (their results stay stored)."""
    @queue.task()
    def bad():
        raise KeyError('k')

    failing = bad()
    drain(queue)
    pending = add(7, 7)
    group = type(add.map([]))([failing, pending])

    with pytest.raises(TaskException):
        asyncio.run(aget_result_group(group))
    drain(queue)
    assert pending.get() == 14


def test_a_closed_event_loop_leaves_no_helper_thread(queue, add):
    """sqlq: a coroutine abandoned with its event loop (closed without cancelling it) does
    not keep the helper thread alive."""
    result = add(9, 9)
    loop = asyncio.new_event_loop()
    abandoned = loop.create_task(aget_result(result))
    loop.run_until_complete(asyncio.sleep(0.1))
    assert helper_threads()
    loop.close()                # the task is never cancelled nor finished
    wait_for(no_helper_thread, 10, 'the helper thread to exit')
    drain(queue)
    assert result.get() == 18
    abandoned._log_destroy_pending = False      # abandoned on purpose: no warning at its GC
