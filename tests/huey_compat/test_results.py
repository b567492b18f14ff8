"""huey 3.5's result handles (docs: api.rst ``Result``, ``ResultGroup``, ``Huey.is_revoked``,
``TaskWrapper.map``).

Confirmed against huey 3.5.4 (MemoryHuey): ``ResultGroup[i]`` waits for the i-th task and
returns its value (TaskException if it failed; IndexError past the end) while iterating gives
the Result handles; ``Result.is_ready()`` reads a stored value into the handle (storage no
longer holds it, ``get()`` still returns it); ``huey.is_revoked(result)`` takes a Result; with
``results=False``, ``map()`` (and a call) return None while ``enqueue(group)`` still returns a
ResultGroup.
"""
from __future__ import annotations

import threading

import pytest

from sqlq import Result, ResultGroup, TaskException, group
from tests._helpers import drain


@pytest.fixture
def square(queue):
    @queue.task()
    def square(x):
        return x * x

    return square


@pytest.fixture
def boom(queue):
    @queue.task()
    def boom():
        raise ValueError('bad')

    return boom


# -- ResultGroup[i] ----------------------------------------------------------------------------
def test_result_group_item_is_the_value(queue, square):
    """huey: ``ResultGroup[i]`` resolves the i-th result (its value, not a Result)."""
    rg = square.map([1, 2, 3])
    drain(queue)
    assert [rg[0], rg[1], rg[2]] == [1, 4, 9]
    assert rg[-1] == 9
    assert rg[0:2] == [1, 4]


def test_result_group_item_waits_for_the_value(queue, square):
    """huey: ``ResultGroup[i]`` blocks until the value is ready."""
    rg = square.map([5])
    started = threading.Event()

    def worker():
        started.set()
        queue.execute(queue.dequeue())

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert started.wait(5)
        assert rg[0] == 25
    finally:
        thread.join(10)


def test_result_group_item_raises_task_exception(queue, square, boom):
    """huey: ``ResultGroup[i]`` of a failed task raises TaskException."""
    rg = queue.enqueue(group([boom.s(), square.s(3)]))
    drain(queue)
    with pytest.raises(TaskException, match='bad'):
        rg[0]
    assert rg[1] == 9


def test_result_group_index_past_the_end(queue, square):
    """huey: IndexError past the last task."""
    rg = square.map([1])
    with pytest.raises(IndexError):
        rg[1]


def test_result_group_iterates_over_results(queue, square):
    """huey: iterating a ResultGroup gives its Result handles; ``len`` counts them."""
    rg = square.map([1, 2])
    assert len(rg) == 2
    handles = list(rg)
    assert all(isinstance(r, Result) for r in handles)
    drain(queue)
    assert [r.get() for r in handles] == [1, 4]


# -- Result.is_ready ---------------------------------------------------------------------------
def test_is_ready_reads_the_value_into_the_handle(queue, square):
    """huey: ``is_ready()`` reads the stored value into the Result: storage no longer has it,
    and ``get()`` returns it."""
    res = square(3)
    assert res.is_ready() is False
    drain(queue)
    assert res.is_ready() is True
    assert queue.result_count() == 0
    assert res.get() == 9 and res.get() == 9


def test_is_ready_reads_an_error_too(queue, boom):
    """huey: a failed task is ready; its error is read into the handle."""
    res = boom()
    drain(queue)
    assert res.is_ready() is True
    assert queue.result_count() == 0
    with pytest.raises(TaskException):
        res.get()


# -- queue.is_revoked(result) ------------------------------------------------------------------
def test_is_revoked_accepts_a_result(queue, square):
    """huey: ``huey.is_revoked(result)`` as with the task or its id."""
    res = square(3)
    assert queue.is_revoked(res) is False
    res.revoke()
    assert queue.is_revoked(res) is True
    assert queue.is_revoked(res.task) is True
    assert queue.is_revoked(res.id) is True
    assert queue.restore(res) is True
    assert queue.is_revoked(res) is False


def test_is_revoked_of_a_result_sees_the_task_revoked(queue, square):
    """huey: a Result is revoked when its task (every invocation) is."""
    res = square(3)
    square.revoke()
    assert queue.is_revoked(res) is True


# -- results=False -----------------------------------------------------------------------------
def test_map_returns_none_without_results(make_queue):
    """huey: with ``results=False``, ``map()`` returns None (the tasks are still enqueued)."""
    queue = make_queue(results=False)

    @queue.task()
    def square(x):
        return x * x

    assert square.map([1, 2]) is None
    assert square(3) is None
    assert queue.pending_count() == 3
    assert isinstance(queue.enqueue(group([square.s(4)])), ResultGroup)
    assert drain(queue) == 4
    assert queue.result_count() == 0
