"""Errors and retries as in huey 3.5: ``on_error`` handlers and ``store_intermediate_errors``,
``CancelExecution`` raised in a task, a held lock with retries left, a sub-task's error, and
the ``build_error_result(task, exception)`` hook."""
from __future__ import annotations

import pickle

import pytest

from sqlq import CancelExecution, MemoryQueue, TaskException
from sqlq.signals import SIGNAL_CANCELED, SIGNAL_ERROR, SIGNAL_LOCKED, SIGNAL_RETRYING
from tests._helpers import drain


def failing_with_handler(queue, retries, outcomes):
    """A task failing with 'attempt N' while ``outcomes`` says so, with an error handler
    recording the arguments it gets; returns (task, handler calls, runs)."""
    calls, runs = [], []

    @queue.task()
    def handler(*args):
        calls.append([repr(arg) for arg in args])

    @queue.task(retries=retries)
    def flaky():
        runs.append(1)
        if outcomes[len(runs) - 1] == 'fail':
            raise ValueError('attempt %d' % len(runs))
        return 'ok'

    return flaky.s().error(handler), calls, runs


# -- on_error and store_intermediate_errors ----------------------------------------------------

def test_on_error_handler_runs_on_every_failed_attempt_with_that_attempts_exception(queue):
    """huey: with store_intermediate_errors=True (the default) the on_error handler runs on
    each failed attempt, with only that attempt's exception (3.2.0: no accumulation)."""
    task, calls, runs = failing_with_handler(queue, 2, ['fail', 'fail', 'fail'])
    queue.enqueue(task)
    drain(queue)
    assert len(runs) == 3
    assert calls == [["ValueError('attempt 1')"], ["ValueError('attempt 2')"],
                     ["ValueError('attempt 3')"]]


def test_on_error_handler_runs_for_failed_attempts_before_a_success(queue):
    """huey: a task that fails once then succeeds has run its handler once."""
    task, calls, runs = failing_with_handler(queue, 2, ['fail', 'ok'])
    result = queue.enqueue(task)
    drain(queue)
    assert calls == [["ValueError('attempt 1')"]]
    assert result.get() == 'ok'


def test_without_intermediate_errors_on_error_runs_once_with_the_final_exception(make_queue):
    """huey: store_intermediate_errors=False runs the handler only when retries are used up,
    and stores nothing for the attempts that will be retried."""
    queue = make_queue(store_intermediate_errors=False)
    task, calls, runs = failing_with_handler(queue, 2, ['fail', 'fail', 'fail'])
    result = queue.enqueue(task)
    queue.execute(queue.dequeue())
    assert result.get(preserve=True) is None        # nothing stored for attempt 1
    drain(queue)
    assert calls == [["ValueError('attempt 3')"]]
    with pytest.raises(TaskException) as info:
        result.get()
    assert info.value.metadata['error'] == "ValueError('attempt 3')"


def test_intermediate_error_is_stored_then_replaced_by_the_retry_result(queue):
    """huey: the error of an attempt that will be retried is stored (Result.get raises);
    the retry's value overwrites it, read after Result.reset()."""
    task, calls, runs = failing_with_handler(queue, 1, ['fail', 'ok'])
    result = queue.enqueue(task)
    queue.execute(queue.dequeue())
    with pytest.raises(TaskException) as info:
        result.get(preserve=True)
    assert info.value.metadata['retries'] == 1
    drain(queue)
    result.reset()
    assert result.get() == 'ok'


# -- CancelExecution -----------------------------------------------------------------------------

def test_cancel_execution_takes_msg_then_retry_as_huey():
    """huey: CancelExecution(msg=None, retry=None); it pickles with both."""
    exc = CancelExecution('not today', True)
    assert str(exc) == 'not today' and exc.retry is True
    assert CancelExecution().retry is None and str(CancelExecution()) == ''
    assert CancelExecution(retry=False).retry is False
    copy = pickle.loads(pickle.dumps(exc))
    assert (str(copy), copy.retry) == ('not today', True)


def test_cancel_execution_in_a_task_stores_a_task_exception(queue):
    """huey: raised in the task body, CancelExecution is the task's error: Result.get raises
    TaskException, the error handler runs, and the signal is CANCELED (not ERROR)."""
    signals = []
    queue.signal()(lambda signal, task, *extra: signals.append(signal))
    handled = []

    @queue.task()
    def handler(exc):
        handled.append(repr(exc))

    @queue.task()
    def job():
        raise CancelExecution('no work on sundays')

    result = queue.enqueue(job.s().error(handler))
    drain(queue)
    with pytest.raises(TaskException) as info:
        result.get()
    assert info.value.metadata['error'] == "CancelExecution('no work on sundays')"
    assert handled == ["CancelExecution('no work on sundays')"]
    assert SIGNAL_CANCELED in signals and SIGNAL_ERROR not in signals


def cancelling(queue, retries, retry, succeed_on):
    runs = []

    @queue.task(retries=retries)
    def job():
        runs.append(1)
        if len(runs) < succeed_on:
            raise CancelExecution(retry=retry)
        return 'done'

    return job, runs


def test_cancel_execution_retry_true_retries_a_task_without_retries(queue):
    """huey: CancelExecution(retry=True) retries even a task declared without retries."""
    job, runs = cancelling(queue, retries=0, retry=True, succeed_on=3)
    result = job()
    drain(queue)
    assert len(runs) == 3
    assert result.get() == 'done'


def test_cancel_execution_retry_false_never_retries(queue):
    """huey: CancelExecution(retry=False) is final even with retries left."""
    job, runs = cancelling(queue, retries=3, retry=False, succeed_on=99)
    result = job()
    drain(queue)
    assert len(runs) == 1
    with pytest.raises(TaskException):
        result.get()


def test_cancel_execution_default_follows_the_tasks_retries(queue):
    """huey: CancelExecution() retries while the task has retries, using them up."""
    job, runs = cancelling(queue, retries=2, retry=None, succeed_on=99)
    result = job()
    drain(queue)
    assert len(runs) == 3
    with pytest.raises(TaskException) as info:
        result.get()
    assert info.value.metadata['retries'] == 0


def test_cancel_execution_in_pre_execute_hook_runs_nothing_and_stores_nothing(queue):
    """huey: a pre-execute hook's CancelExecution cancels the task: no run, no result."""
    ran = []

    @queue.task(retries=2)
    def job():
        ran.append(1)

    @queue.pre_execute()
    def veto(task):
        raise CancelExecution(retry=True)

    result = job()
    drain(queue)
    assert ran == [] and result.get() is None and queue.pending_count() == 0


# -- locks, sub-tasks ---------------------------------------------------------------------------

def test_task_locked_with_a_retry_pending_is_not_the_result(queue):
    """huey: a task that cannot take its lock and will be retried stores nothing and does not
    run its error handler; its result is the retry's."""
    signals = []
    queue.signal()(lambda signal, task, *extra: signals.append(signal))
    lock = queue.lock_task('report')
    handled = []

    @queue.task()
    def handler(exc):
        handled.append(exc)

    @queue.task(retries=1)
    @lock
    def report():
        return 'written'

    lock.acquire()
    result = queue.enqueue(report.s().error(handler))
    queue.execute(queue.dequeue())
    assert result.get(preserve=True) is None
    assert SIGNAL_LOCKED in signals and SIGNAL_RETRYING in signals
    lock.release()
    drain(queue)
    assert result.get() == 'written'
    assert handled == [] and SIGNAL_ERROR not in signals


def test_task_locked_without_retries_stores_the_lock_error(queue):
    """huey: with no retry left the TaskLockedException is the result (signal LOCKED only)."""
    signals = []
    queue.signal()(lambda signal, task, *extra: signals.append(signal))
    lock = queue.lock_task('report')

    @queue.task()
    @lock
    def report():
        return 'written'

    with lock:
        result = report()
        drain(queue)
    with pytest.raises(TaskException) as info:
        result.get()
    assert info.value.metadata['error'] == "TaskLockedException('unable to acquire lock report')"
    assert SIGNAL_LOCKED in signals and SIGNAL_ERROR not in signals


def test_task_failing_on_a_sub_tasks_error_keeps_the_inner_error_text(queue):
    """huey: a task that fails because a result it read raised TaskException stores the
    inner task's error, not 'TaskException()'."""
    @queue.task()
    def inner():
        raise ValueError('inner boom')

    inner_result = inner()
    drain(queue)

    @queue.task()
    def outer():
        return inner_result.get()

    result = outer()
    drain(queue)
    with pytest.raises(TaskException) as info:
        result.get()
    assert info.value.metadata['error'] == "ValueError('inner boom')"
    assert str(info.value) == "ValueError('inner boom')"


# -- build_error_result ---------------------------------------------------------------------------

class AnnotatingQueue(MemoryQueue):
    """huey's recipe, verbatim but for the class name."""

    def build_error_result(self, task, exception):
        err = super().build_error_result(task, exception)
        err['task_name'] = task.name
        err['task_args'] = task.args
        err['task_kwargs'] = task.kwargs
        return err


def test_build_error_result_subclass_with_hueys_signature():
    """huey: Huey.build_error_result(task, exception) returns the dict stored as the error;
    a subclass extends super()'s dict."""
    queue = AnnotatingQueue('annotating')

    @queue.task()
    def failing_task(arg):
        raise RuntimeError(arg)

    result = failing_task('some-arg')
    drain(queue)
    with pytest.raises(TaskException) as info:
        result.get()
    metadata = info.value.metadata
    assert metadata['task_args'] == ('some-arg',) and metadata['task_kwargs'] == {}
    assert metadata['error'] == "RuntimeError('some-arg')"
    assert 'RuntimeError: some-arg' in metadata['traceback']
    assert metadata['task_id'] == result.id and metadata['retries'] == 0


def test_build_error_result_hook_is_called_with_task_and_exception(queue):
    """huey: the hook gets (task, exception) for every failed attempt, on every backend."""
    seen = []
    default = queue.build_error_result

    def build_error_result(task, exception):
        seen.append((task.id, repr(exception)))
        err = default(task, exception)
        err['extra'] = 'context'
        return err

    queue.build_error_result = build_error_result

    @queue.task(retries=1)
    def bad():
        raise KeyError('k')

    result = bad()
    drain(queue)
    assert seen == [(result.id, "KeyError('k')")] * 2
    with pytest.raises(TaskException) as info:
        result.get()
    assert info.value.metadata['extra'] == 'context'
