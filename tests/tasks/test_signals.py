"""Signals: which fire, in what order, with which extra arguments."""
from __future__ import annotations

import datetime

import pytest

import sqlq
from sqlq import RetryTask
from sqlq.signals import (
    SIGNAL_CANCELED,
    SIGNAL_COMPLETE,
    SIGNAL_ENQUEUED,
    SIGNAL_ERROR,
    SIGNAL_EXECUTING,
    SIGNAL_EXPIRED,
    SIGNAL_INTERRUPTED,
    SIGNAL_LOCKED,
    SIGNAL_RATE_LIMITED,
    SIGNAL_RETRYING,
    SIGNAL_REVOKED,
    SIGNAL_SCHEDULED,
    SIGNAL_TIMEOUT,
)
from tests._helpers import drain


@pytest.fixture
def events(queue):
    log = []

    @queue.signal()
    def everything(signal, task, *extra):
        log.append((signal, task.name.rsplit('.', 1)[-1], tuple(type(e).__name__ for e in extra)))

    return log


def test_signal_constants_match_huey_and_are_reexported():
    assert (SIGNAL_CANCELED, SIGNAL_COMPLETE, SIGNAL_ENQUEUED, SIGNAL_ERROR, SIGNAL_EXECUTING,
            SIGNAL_EXPIRED, SIGNAL_INTERRUPTED, SIGNAL_LOCKED, SIGNAL_RATE_LIMITED,
            SIGNAL_RETRYING, SIGNAL_REVOKED, SIGNAL_SCHEDULED, SIGNAL_TIMEOUT) == (
        'canceled', 'complete', 'enqueued', 'error', 'executing', 'expired', 'interrupted',
        'locked', 'rate-limited', 'retrying', 'revoked', 'scheduled', 'timeout')
    assert sqlq.SIGNAL_COMPLETE == SIGNAL_COMPLETE
    assert sqlq.SIGNAL_ERROR == SIGNAL_ERROR


def test_success_sequence(queue, events):
    @queue.task()
    def ok():
        return 1

    ok()
    assert events == [(SIGNAL_ENQUEUED, 'ok', ())]
    drain(queue)
    assert events == [(SIGNAL_ENQUEUED, 'ok', ()), (SIGNAL_EXECUTING, 'ok', ()),
                      (SIGNAL_COMPLETE, 'ok', ())]


def test_error_and_retry_sequence_with_exception_argument(queue, events):
    @queue.task(retries=1)
    def bad():
        raise ValueError('x')

    bad()
    drain(queue)
    assert events == [
        (SIGNAL_ENQUEUED, 'bad', ()),
        (SIGNAL_EXECUTING, 'bad', ()), (SIGNAL_ERROR, 'bad', ('ValueError',)),
        (SIGNAL_RETRYING, 'bad', ()), (SIGNAL_ENQUEUED, 'bad', ()),
        (SIGNAL_EXECUTING, 'bad', ()), (SIGNAL_ERROR, 'bad', ('ValueError',)),
    ]


def test_retry_with_delay_emits_scheduled(queue, events):
    @queue.task(retries=1, retry_delay=60)
    def bad():
        raise ValueError

    bad()
    drain(queue)
    assert events[-2:] == [(SIGNAL_RETRYING, 'bad', ()), (SIGNAL_SCHEDULED, 'bad', ())]


def test_retry_task_emits_retrying(queue, events):
    @queue.task()
    def again():
        raise RetryTask(delay=60)

    again()
    drain(queue)
    names = [e[0] for e in events]
    assert SIGNAL_RETRYING in names and SIGNAL_ERROR not in names
    assert names[-1] == SIGNAL_SCHEDULED


def test_revoked_signal(queue, events):
    @queue.task()
    def job():
        return 1

    job().revoke()
    drain(queue)
    assert events == [(SIGNAL_ENQUEUED, 'job', ()), (SIGNAL_REVOKED, 'job', ())]


def test_expired_signal(make_queue):
    queue = make_queue(utc=False)
    log = []
    queue.signal(SIGNAL_EXPIRED, SIGNAL_EXECUTING)(lambda s, t, *e: log.append(s))

    @queue.task(expires=5)
    def job():
        return 1

    job()
    task = queue.dequeue()
    queue.execute(task, timestamp=datetime.datetime.now() + datetime.timedelta(seconds=10))
    assert log == [SIGNAL_EXPIRED]


def test_locked_signal(queue, events):
    lock = queue.lock_task('sig-lock')

    @queue.task()
    @lock
    def job():
        return 1

    with lock:
        job()
        drain(queue)
    # huey: LOCKED carries no exception argument (only ERROR does) and is not also an ERROR
    assert events == [(SIGNAL_ENQUEUED, 'job', ()), (SIGNAL_EXECUTING, 'job', ()),
                      (SIGNAL_LOCKED, 'job', ())]


def test_rate_limited_signal(queue, events):
    @queue.task()
    @queue.rate_limit('sig-rl', limit=1, per=3600)
    def job():
        return 1

    job()
    job()
    drain(queue)
    names = [e[0] for e in events]
    assert names.count(SIGNAL_COMPLETE) == 1
    assert SIGNAL_RATE_LIMITED in names
    assert names[-1] == SIGNAL_SCHEDULED


def test_scheduled_signal_for_future_task(make_queue):
    queue = make_queue(utc=False)
    log = []

    @queue.signal(SIGNAL_SCHEDULED, SIGNAL_ENQUEUED, SIGNAL_EXECUTING)
    def handler(signal, task, *extra):
        log.append(signal)

    @queue.task()
    def job():
        return 1

    job.schedule(delay=3600)
    drain(queue)
    assert SIGNAL_EXECUTING not in log
    assert SIGNAL_SCHEDULED in log or SIGNAL_ENQUEUED in log


def test_filtered_receiver_and_disconnect(queue):
    completes = []

    def on_complete(signal, task, *extra):
        completes.append(task.id)

    queue.signal(SIGNAL_COMPLETE)(on_complete)

    @queue.task()
    def job():
        return 1

    r = job()
    drain(queue)
    assert completes == [r.id]
    queue.disconnect_signal(on_complete, SIGNAL_COMPLETE)
    job()
    drain(queue)
    assert completes == [r.id]


def test_failing_signal_handler_does_not_break_execution(queue):
    @queue.signal(SIGNAL_EXECUTING)
    def broken(signal, task, *extra):
        raise RuntimeError('handler bug')

    @queue.task()
    def job():
        return 'still ran'

    r = job()
    drain(queue)
    assert r.get() == 'still ran'


def test_unknown_signal_name_is_rejected(queue):
    with pytest.raises((ValueError, sqlq.ConfigurationError)):
        queue.signal('no-such-signal')(lambda *a: None)
