"""huey 3.5's task wrappers and task names (docs: api.rst ``Huey.task``, ``TaskWrapper``).

Confirmed against huey 3.5.4 (MemoryHuey): ``task.name`` is the function's ``__name__`` (or the
``name=`` given) while the registry key carries the module (``__main__.add``; the task's repr
shows it); ``TaskWrapper.retries``/``.retry_delay`` are the decorator's values (0 by default);
``huey2.task()(task_of_huey1)`` makes a task of the same function, with the new decorator's
options.
"""
from __future__ import annotations

import pytest

from sqlq import ConfigurationError, MemoryQueue
from sqlq.message import Message
from sqlq.options import TaskOptions
from tests._helpers import drain


def test_task_name_is_the_functions_name(queue):
    """huey: ``task.name`` is the function's ``__name__``; the registry key keeps the module."""
    @queue.task()
    def add(a, b):
        return a + b

    task = add.s(1, 2)
    assert task.name == add.task_class.name == add.name == 'add'
    assert task.registered_name == add.registered_name == \
        'tests.huey_compat.test_wrappers.test_task_name_is_the_functions_name.<locals>.add'
    assert add.registered_name in queue.registered_task_names()
    assert repr(task).startswith(add.registered_name + ': ')


def test_task_name_given_to_the_decorator(queue):
    """huey: ``@task(name='custom')``: ``task.name`` is 'custom'."""
    @queue.task(name='custom')
    def f():
        return 1

    assert f.s().name == f.name == 'custom'
    assert 'custom' in queue.registered_task_names()
    res = f()
    drain(queue)
    assert res.get() == 1


def test_signal_receivers_see_the_short_name(queue):
    """huey: signal receivers get the task, whose ``name`` is the function's name."""
    names = []

    @queue.signal()
    def receiver(signal, task, *extra):
        names.append(task.name)

    @queue.task()
    def job():
        return 1

    job()
    drain(queue)
    assert set(names) == {'job'}


def test_messages_carry_the_registered_name(queue):
    """Stored messages still carry the module-qualified name, so tasks enqueued before (and
    by older sqlq versions) are found by a consumer."""
    @queue.task()
    def add(a, b):
        return a + b

    old = Message('old-id', add.registered_name, (2, 3), {}, TaskOptions())
    queue.storage.enqueue(queue.codec.encode(old), 0)
    add(1, 1)
    names = {queue.codec.decode(item).name for item in queue.storage.enqueued_items()}
    assert names == {add.registered_name}
    assert drain(queue) == 2
    assert queue.result('old-id') == 5
    assert queue.dead_letter_count() == 0


def test_tasks_with_the_same_function_name_stay_apart(queue):
    """Two tasks named ``job`` in different scopes: each runs its own function, and revoking
    one (every invocation) leaves the other."""
    def first():
        @queue.task()
        def job():
            return 'first'
        return job

    def second():
        @queue.task()
        def job():
            return 'second'
        return job

    a, b = first(), second()
    assert a.name == b.name == 'job' and a.registered_name != b.registered_name
    a.revoke()
    ra, rb = a(), b()
    drain(queue)
    assert (ra.get(), rb.get()) == (None, 'second')
    assert queue.is_revoked(a) and not queue.is_revoked(b)


# -- TaskWrapper options -----------------------------------------------------------------------
def test_wrapper_retries_and_retry_delay(queue):
    """huey: ``TaskWrapper.retries`` and ``.retry_delay`` (0 unless given)."""
    @queue.task()
    def plain():
        pass

    @queue.task(retries=3, retry_delay=5)
    def flaky():
        pass

    assert (plain.retries, plain.retry_delay) == (0, 0)
    assert (flaky.retries, flaky.retry_delay) == (3, 5)
    assert (flaky.retry_backoff, flaky.priority, flaky.timeout, flaky.expires) == \
        (0, None, None, None)


def test_setting_a_wrapper_option_changes_the_default(queue):
    """Setting ``wrapper.retries`` changes what later invocations get."""
    @queue.task(retries=1)
    def job():
        pass

    job.retries = 4
    assert job.retries == 4 and job.s().retries == 4


# -- re-wrapping -------------------------------------------------------------------------------
def test_task_of_another_queue_is_unwrapped_to_its_function(make_queue):
    """huey: ``queue2.task()(task_of_queue1)`` makes a task of the same function (with the
    new decorator's options), which queue2 runs."""
    queue1, queue2 = make_queue('one'), make_queue('two')

    @queue1.task(retries=2, retry_delay=3)
    def double(x):
        return x * 2

    again = queue2.task()(double)
    assert again.func is double.func
    assert (again.retries, again.retry_delay) == (0, 0)
    res = again(21)
    assert queue1.pending_count() == 0
    drain(queue2)
    assert res.get() == 42


def test_context_task_of_another_queues_task(make_queue):
    """``queue2.context_task(obj)(task_of_queue1)`` wraps the function, not the wrapper."""
    queue1, queue2 = make_queue('one'), make_queue('two')
    entered = []

    class Ctx:
        def __enter__(self):
            entered.append(1)

        def __exit__(self, *exc):
            return False

    @queue1.task()
    def double(x):
        return x * 2

    res = queue2.context_task(Ctx())(double)(4)
    drain(queue2)
    assert res.get() == 8 and entered == [1]
    assert queue1.pending_count() == 0


# -- async functions (sqlq runs them: tests/tasks/test_async_tasks.py) ------------------------
def test_async_generator_function_is_a_configuration_error():
    """An async generator function can't run as a plain call either."""
    queue = MemoryQueue('x')
    with pytest.raises(ConfigurationError):
        @queue.task()
        async def stream():
            yield 1
