"""huey 3.5's pipelines (docs: api.rst ``Task.then``/``Task.error``, guide.rst "Task
pipelines").

Confirmed against huey 3.5.4 (MemoryHuey): ``.then(task_instance, *args, **kwargs)`` appends
``args`` to the instance's arguments and merges ``kwargs``; keyword arguments given to
``.then()`` win over the keys of a parent's dict result; when a step fails for good, every
later step's result id holds the same error, so reading it raises TaskException.
"""
from __future__ import annotations

import pytest

from sqlq import ResultGroup, TaskException
from tests._helpers import drain
from tests.huey_compat._tasks import define_tasks


@pytest.fixture
def t(queue):
    return define_tasks(queue)


def test_then_chain_passes_each_result_on(queue, t):
    """huey: ``add.s(1, 2).then(add, 3).then(add, 4)`` -> [3, 6, 10]."""
    rg = queue.enqueue(t.add.s(1, 2).then(t.add, 3).then(t.add, 4))
    assert isinstance(rg, ResultGroup)
    drain(queue)
    assert rg.get() == [3, 6, 10]


def test_tuple_result_extends_the_next_steps_args(queue, t):
    """huey docs' fibonacci: a tuple result is the next step's ``*args``."""
    rg = queue.enqueue(t.fib.s(1).then(t.fib).then(t.fib).then(t.fib))
    drain(queue)
    assert rg.get() == [(2, 1), (3, 2), (5, 3), (8, 5)]


def test_then_with_a_task_instance_adds_the_given_arguments(queue, t):
    """huey: ``.then(task_instance, *args, **kwargs)``: the instance's arguments, then
    ``args``, then the parent's result; ``kwargs`` merged into its keyword arguments."""
    rg = queue.enqueue(t.record.s(1).then(t.record.s(0, a=1), 5, z=1))
    drain(queue)
    assert rg.get() == [[[1], {}], [[0, 5, [[1], {}]], {'a': 1, 'z': 1}]]


def test_error_with_a_task_instance_adds_the_given_arguments(queue, t):
    """huey: ``.error(task_instance, *args)`` works the same way; the exception comes last."""
    task = t.boom.s().error(t.record.s('a'), 'b')
    queue.enqueue(task)
    drain(queue)
    args, kwargs = queue.result(task.on_error.id)
    assert args[:2] == ['a', 'b'] and isinstance(args[2], ValueError)


def test_explicit_then_kwargs_win_over_a_parents_dict_result(queue, t):
    """huey: a dict result updates the next step's kwargs, except those given to
    ``.then()``."""
    rg = queue.enqueue(t.mapping.s().then(t.record, x=99))
    drain(queue)
    assert rg.get() == [{'x': 1, 'y': 2}, [[], {'x': 99, 'y': 2}]]


def test_steps_after_a_failed_step_get_its_error(queue, t):
    """huey: when a step fails for good, the steps that never run have its error as result:
    reading them raises TaskException (instead of waiting for ever)."""
    first, second, third = queue.enqueue(t.boom.s().then(t.record, 1).then(t.record, 2))
    assert drain(queue) == 1
    for result in (first, second, third):
        with pytest.raises(TaskException) as info:
            result.get(blocking=True, timeout=5)
        assert 'boom' in info.value.metadata['error']
        assert info.value.metadata['task_id'] == first.id


def test_failure_in_the_middle_of_a_pipeline(queue, t):
    """huey: the steps before the failed one keep their values; the later ones get its
    error."""
    rg = queue.enqueue(t.record.s(1).then(t.boom).then(t.record, 2).then(t.record, 3))
    drain(queue)
    first, failed, third, fourth = rg
    assert first.get() == [[1], {}]
    for result in (failed, third, fourth):
        with pytest.raises(TaskException) as info:
            result.get()
        assert info.value.metadata['task_id'] == failed.id
    with pytest.raises(TaskException):
        rg.get()


def test_steps_wait_while_a_failed_step_will_be_retried(queue):
    """huey: a step with retries left is retried; the later steps get nothing meanwhile, and
    run once it succeeds."""
    attempts = []

    @queue.task(retries=1)
    def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError('once')
        return 'ok'

    @queue.task()
    def echo(value):
        return value

    first, second = queue.enqueue(flaky.s().then(echo))
    queue.execute(queue.dequeue())             # fails, retry enqueued
    assert second.get() is None
    drain(queue)
    assert second.get() == 'ok'


def test_no_error_is_written_when_the_queue_keeps_no_results(make_queue):
    """huey: with ``results=False`` nothing is stored, for the failed step or after it."""
    queue = make_queue(results=False)

    @queue.task()
    def boom():
        raise ValueError('x')

    @queue.task()
    def echo(value):
        return value

    assert queue.enqueue(boom.s().then(echo)) is None
    drain(queue)
    assert queue.result_count() == 0
