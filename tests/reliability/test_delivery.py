"""Delivery guarantees of the task layer: claims stay until their outcome commits, tasks that
fail for good are kept as dead letters, at-most-once tasks, unique enqueue, result expiry."""
from __future__ import annotations

import pytest

from sqlq import ConfigurationError
from tests._clock import FakeClock
from tests._helpers import drain


def test_claimed_task_stays_stored_until_executed(queue):
    @queue.task()
    def job():
        return 1

    job()
    task = queue.dequeue()
    assert queue.pending_count() == 0 and queue.running_count() == 1
    queue.execute(task)
    assert queue.running_count() == 0


def test_task_failing_for_good_becomes_a_dead_letter_with_error_and_traceback(queue):
    @queue.task(retries=1)
    def broken(x):
        raise ValueError('broken %s' % x)

    broken(5)
    drain(queue)
    letters = queue.dead_letters()
    assert len(letters) == 1
    letter = letters[0]
    assert "ValueError('broken 5')" in letter.reason
    assert 'Traceback' in letter.reason and 'broken' in letter.reason
    assert letter.attempts >= 1 and letter.failed_at > 0
    # the kept message is the task itself: it decodes and can be run again
    assert queue.deserialize_task(letter.data).args == (5,)


def test_successful_retried_and_revoked_tasks_leave_no_dead_letter(queue):
    calls = []

    @queue.task(retries=1)
    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError('once')
        return 'ok'

    @queue.task()
    def skipped():
        return 1

    flaky()
    r = skipped()
    r.revoke()
    drain(queue)
    assert queue.dead_letter_count() == 0


def test_at_most_once_task_is_removed_when_taken(queue):
    @queue.task(at_most_once=True)
    def charge_card():
        return 'charged'

    res = charge_card()
    task = queue.dequeue()
    # Already gone from storage: a crash now loses it rather than charging twice.
    assert queue.running_count() == 0 and queue.pending_count() == 0
    queue.execute(task)
    assert res.get() == 'charged'


def test_unique_task_returns_the_pending_tasks_result(queue):
    @queue.task(unique=True)
    def rebuild(section):
        return 'rebuilt %s' % section

    first = rebuild('a')
    second = rebuild('a')
    other = rebuild('b')
    assert second.id == first.id and other.id != first.id
    assert queue.pending_count() == 2
    drain(queue)
    assert first.get(preserve=True) == 'rebuilt a'
    # once finished, the same call enqueues anew
    third = rebuild('a')
    assert third.id != first.id and queue.pending_count() == 1


def test_unique_key_on_schedule_and_held_while_retrying(make_queue):
    clock = FakeClock()
    queue = make_queue(clock=clock)
    attempts = []

    @queue.task(retries=1, retry_delay=10)
    def sync(account):
        attempts.append(account)
        if len(attempts) == 1:
            raise RuntimeError('retry me')
        return 'synced'

    first = sync.schedule(('x',), unique_key='sync-x')
    assert sync.schedule(('y',), unique_key='sync-x').id == first.id
    drain(queue)                                 # fails, retry scheduled in 10 s
    assert queue.scheduled_count() == 1
    assert sync.schedule(('x',), unique_key='sync-x').id == first.id
    clock.now += 11
    queue.enqueue_due()
    drain(queue)
    assert attempts == ['x', 'x']
    assert sync.schedule(('x',), unique_key='sync-x').id != first.id


def test_unique_enqueue_many_writes_each_key_once(queue):
    @queue.task(unique=True)
    def index(doc):
        return doc

    group = index.map(['a', 'b', 'a'])
    assert group.results[0].id == group.results[2].id
    assert queue.pending_count() == 2


def test_results_expire_after_result_ttl(make_queue):
    clock = FakeClock()
    queue = make_queue(clock=clock, result_ttl=60)

    @queue.task()
    def job():
        return 42

    kept, lost = job(), job()
    drain(queue)
    assert kept.get() == 42
    clock.now += 61
    assert lost.get() is None and queue.result_count() == 0


def test_result_ttl_must_be_positive(make_queue):
    with pytest.raises(ConfigurationError):
        make_queue(result_ttl=0)
