"""Signals as in huey 3.5: each failure kind sends its own signal, not also ERROR; EXECUTING
comes before the pre-execute hooks."""
from __future__ import annotations

import time

import pytest

from sqlq import CancelExecution, TaskException
from sqlq.signals import (
    SIGNAL_CANCELED,
    SIGNAL_COMPLETE,
    SIGNAL_ENQUEUED,
    SIGNAL_ERROR,
    SIGNAL_EXECUTING,
    SIGNAL_RATE_LIMITED,
    SIGNAL_RETRYING,
    SIGNAL_TIMEOUT,
)
from sqlq.worker import alarm_timeout
from tests._helpers import drain


@pytest.fixture
def signals(queue):
    log = []
    queue.signal()(lambda signal, task, *extra: log.append(
        (signal, task.name.rsplit('.', 1)[-1], tuple(type(e).__name__ for e in extra))))
    return log


def test_timed_out_task_sends_timeout_only(queue, signals):
    """huey: a task stopped by its timeout sends TIMEOUT, not also ERROR; the TaskTimeout is
    its stored error."""
    @queue.task(timeout=0.05)
    def slow():
        time.sleep(5)  # interrupted by the consumer's alarm

    result = slow()
    queue.execute(queue.dequeue(), guard=alarm_timeout)  # as a process worker enforces it
    assert signals == [(SIGNAL_ENQUEUED, 'slow', ()), (SIGNAL_EXECUTING, 'slow', ()),
                       (SIGNAL_TIMEOUT, 'slow', ())]
    with pytest.raises(TaskException) as info:
        result.get()
    assert 'TaskTimeout' in info.value.metadata['error']


def test_cooperative_timeout_with_retries_sends_timeout_and_retrying(queue, signals):
    """huey: a timed-out attempt with a retry left: TIMEOUT then RETRYING, no ERROR."""
    runs = []

    @queue.task(timeout=0.01, retries=1, context=True)
    def slow(task=None):
        runs.append(1)
        if len(runs) == 1:
            time.sleep(0.03)
            task.check_timeout()
        return 'second try'

    result = slow()
    drain(queue)
    names = [name for name, _, _ in signals]
    assert names.count(SIGNAL_TIMEOUT) == 1 and SIGNAL_RETRYING in names
    assert SIGNAL_ERROR not in names
    result.reset()
    assert result.get() == 'second try'


def test_final_rate_limit_rejection_sends_rate_limited_only(queue, signals):
    """huey: a rate-limited task that is not retried sends RATE_LIMITED, not also ERROR."""
    @queue.task()
    @queue.rate_limit('once', limit=1, per=3600, retry=False)
    def job():
        return 'ran'

    first, second = job(), job()
    drain(queue)
    assert first.get() == 'ran'
    with pytest.raises(TaskException):
        second.get()
    names = [name for name, _, _ in signals]
    assert names.count(SIGNAL_RATE_LIMITED) == 1
    assert SIGNAL_ERROR not in names


def test_ordinary_error_sends_error_with_the_exception(queue, signals):
    """huey: an ordinary failure sends ERROR with the exception as extra argument."""
    @queue.task()
    def bad():
        raise KeyError('x')

    bad()
    drain(queue)
    assert signals[-1] == (SIGNAL_ERROR, 'bad', ('KeyError',))


def test_cancel_in_task_sends_canceled_only(queue, signals):
    """huey: CancelExecution raised by a task sends CANCELED, not ERROR."""
    @queue.task()
    def job():
        raise CancelExecution()

    job()
    drain(queue)
    assert signals[-1] == (SIGNAL_CANCELED, 'job', ())
    assert SIGNAL_ERROR not in [name for name, _, _ in signals]


def test_executing_is_sent_before_pre_execute_hooks_cancel(queue, signals):
    """huey: EXECUTING precedes the pre-execute hooks, so a hook's cancel follows it."""
    @queue.task()
    def job():
        return 1

    @queue.pre_execute()
    def veto(task):
        raise CancelExecution()

    job()
    drain(queue)
    assert signals == [(SIGNAL_ENQUEUED, 'job', ()), (SIGNAL_EXECUTING, 'job', ()),
                       (SIGNAL_CANCELED, 'job', ())]
    assert SIGNAL_COMPLETE not in [name for name, _, _ in signals]
