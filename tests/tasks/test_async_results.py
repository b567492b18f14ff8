"""Awaitable results and enqueues from asyncio code: ``await result``,
``await result.aget(timeout=...)``, ``await group.aget()`` / ``await group``, woken by the
storage's completion notification (the helper thread of :mod:`sqlq.awaiting`, shared with
huey's ``aget_result``: tests/huey_compat/test_asyncio.py), and ``await task.aenqueue(...)``."""
from __future__ import annotations

import asyncio
import time

import pytest

import sqlq.awaiting
from sqlq import ResultTimeout, TaskException
from tests._helpers import drain


@pytest.fixture
def add(queue):
    return queue.task(name='add')(lambda a, b: a + b)


def test_await_result_is_woken_by_the_completion(queue, add, later, monkeypatch):
    """``await result`` returns the value once a worker stored it, woken by the notification
    (the helper thread's fallback re-check would come only after 5 s)."""
    monkeypatch.setattr(sqlq.awaiting, 'HELPER_WAIT', 5.0)
    result = add(1, 2)

    async def main():
        later(0.05, drain, queue)
        started = time.monotonic()
        value = await result
        return value, time.monotonic() - started

    value, waited = asyncio.run(main())
    assert value == 3
    assert waited < 4


def test_aget_times_out_raises_the_tasks_error_and_honours_preserve(queue, add):
    @queue.task()
    def bad():
        raise ValueError('boom')

    pending = add(2, 2)
    with pytest.raises(ResultTimeout):
        asyncio.run(pending.aget(timeout=0.05))
    failing = bad()
    drain(queue)
    with pytest.raises(TaskException, match='boom'):
        asyncio.run(failing.aget())
    assert asyncio.run(pending.aget(preserve=True)) == 4
    assert queue.result(pending.id, preserve=True) == 4      # still stored
    assert asyncio.run(pending.aget()) == 4


def test_await_group_returns_the_values_in_order(queue, add, later):
    group = add.map([(i, i) for i in range(5)])

    async def main():
        later(0.05, drain, queue)
        return await group, await group.aget(timeout=5)

    assert asyncio.run(main()) == ([0, 2, 4, 6, 8], [0, 2, 4, 6, 8])


def test_aenqueue_enqueues_from_a_coroutine_without_blocking_the_loop(queue, add):
    """``await task.aenqueue(...)`` enqueues in the loop's executor and returns the Result;
    arguments are checked as for a call."""
    async def main():
        result = await add.aenqueue(3, 4)
        with pytest.raises(TypeError):
            await add.aenqueue(1, 2, 3)
        return result

    result = asyncio.run(main())
    assert queue.pending_count() == 1
    drain(queue)
    assert result.get() == 7
