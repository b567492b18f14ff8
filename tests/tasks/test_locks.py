"""lock_task (decorator and context manager, ttl), is_locked, flush_locks and rate_limit."""
from __future__ import annotations

import datetime
import threading

import pytest

from sqlq import RateLimitExceeded, TaskException, TaskLock, TaskLockedException
from tests._clock import FakeClock
from tests._helpers import drain

# --------------------------------------------------------------------------- lock_task

def test_lock_as_context_manager(queue):
    lock = queue.lock_task('resource')
    assert isinstance(lock, TaskLock)
    assert queue.is_locked('resource') is False
    with lock as bound:
        assert bound is lock
        assert queue.is_locked('resource') is True
        with pytest.raises(TaskLockedException):
            with queue.lock_task('resource'):
                pass
    assert queue.is_locked('resource') is False


def test_lock_released_when_block_raises(queue):
    with pytest.raises(KeyError):
        with queue.lock_task('r'):
            raise KeyError('x')
    assert queue.is_locked('r') is False


def test_locked_task_fails_with_task_locked_exception(queue):
    lock = queue.lock_task('db-sync')
    ran = []

    @queue.task()
    @lock
    def sync():
        ran.append(1)
        return 'synced'

    with lock:
        res = sync()
        drain(queue)
    assert ran == []
    with pytest.raises(TaskException) as excinfo:
        res.get()
    assert 'TaskLockedException' in excinfo.value.metadata['error']

    res2 = sync()                               # lock free again: runs
    drain(queue)
    assert res2.get() == 'synced'
    assert queue.is_locked('db-sync') is False  # released after the task


def test_lock_decorator_releases_on_task_error(queue):
    lock = queue.lock_task('l')

    @queue.task()
    @lock
    def bad():
        raise ValueError

    bad()
    drain(queue)
    assert queue.is_locked('l') is False


def test_distinct_lock_names_do_not_conflict(queue):
    with queue.lock_task('a'):
        with queue.lock_task('b'):
            assert queue.is_locked('a') and queue.is_locked('b')


def test_flush_locks_clears_held_locks_and_reports_them(queue):
    # huey: flush_locks(*names) clears every lock created with lock_task (plus any extra
    # names given) and returns the set of names that were actually held.
    queue.lock_task('x').acquire()
    queue.lock_task('y').acquire()
    queue.lock_task('idle')                       # registered but never acquired
    flushed = queue.flush_locks()
    assert set(flushed) == {'x', 'y'}
    assert not queue.is_locked('x') and not queue.is_locked('y')
    assert set(queue.flush_locks()) == set()
    queue.lock_task('x').acquire()
    assert set(queue.flush_locks('x', 'never-used')) == {'x'}


def test_lock_acquire_release_methods(queue):
    lock = queue.lock_task('m')
    assert lock.acquire() is True
    with pytest.raises(TaskLockedException):   # huey: acquire() raises when held
        lock.acquire()
    assert lock.is_locked() is True
    assert lock.release() is True
    assert lock.is_locked() is False


def test_lock_mutual_exclusion_across_threads(queue):
    lock = queue.lock_task('shared')
    winners = []
    refused = []
    guard = threading.Lock()
    all_refused = threading.Event()
    barrier = threading.Barrier(4)

    def contender():
        barrier.wait(5)
        try:
            with lock:
                winners.append(1)
                # hold the lock until every other contender has been refused
                all_refused.wait(10)
        except TaskLockedException:
            with guard:
                refused.append(1)
                if len(refused) == 3:
                    all_refused.set()

    threads = [threading.Thread(target=contender) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert not any(t.is_alive() for t in threads)
    assert len(winners) == 1 and len(refused) == 3
    assert queue.is_locked('shared') is False


# --------------------------------------------------------------------------- rate_limit

def test_rate_limit_allows_limit_per_window_then_reschedules(make_queue):
    queue = make_queue(utc=False)
    ran = []

    @queue.task()
    @queue.rate_limit('api', limit=2, per=3600)
    def call_api(i):
        ran.append(i)
        return i

    rs = [call_api(i) for i in range(3)]
    drain(queue)
    assert ran == [0, 1]
    assert [rs[0].get(), rs[1].get()] == [0, 1]
    assert rs[2].get() is None                  # not an error: retried later
    [retry] = queue.scheduled()
    assert retry.id == rs[2].id
    assert retry.retries == 0                   # did not consume retries (none configured)


def test_rate_limit_retry_false_is_an_error(queue):
    @queue.task()
    @queue.rate_limit('strict', limit=1, per=3600, retry=False)
    def once():
        return 'ok'

    r1, r2 = once(), once()
    drain(queue)
    assert r1.get() == 'ok'
    with pytest.raises(TaskException) as excinfo:
        r2.get()
    assert 'RateLimitExceeded' in excinfo.value.metadata['error']
    assert queue.scheduled_count() == 0


def test_rate_limit_as_plain_decorator_raises(queue):
    limiter = queue.rate_limit('plain', limit=1, per=3600)

    @limiter
    def f():
        return 1

    assert f() == 1
    with pytest.raises(RateLimitExceeded) as excinfo:
        f()
    assert 0 < excinfo.value.delay <= 3600


# --------------------------------------------------------------------------- injectable clock


def test_lock_ttl_with_clock(make_queue):
    clock = FakeClock()
    queue = make_queue(clock=clock)
    lock = queue.lock_task('ttl', ttl=30)
    assert lock.acquire() is True
    clock.advance(29)
    assert queue.is_locked('ttl') is True
    with pytest.raises(TaskLockedException):
        queue.lock_task('ttl', ttl=30).acquire()
    clock.advance(2)
    assert queue.is_locked('ttl') is False
    assert queue.lock_task('ttl', ttl=30).acquire() is True


def test_rate_limit_window_with_clock(make_queue):
    clock = FakeClock(start=1_700_000_000.0 - (1_700_000_000.0 % 60))   # window start
    queue = make_queue(utc=False, clock=clock)
    ran = []

    @queue.task()
    @queue.rate_limit('clocked', limit=2, per=60)
    def job(i):
        ran.append(i)

    for i in range(3):
        job(i)
    drain(queue)
    assert ran == [0, 1]
    [retry] = queue.scheduled()
    wait = (retry.eta - datetime.datetime.fromtimestamp(clock())).total_seconds()
    assert 0 < wait <= 60                        # retried when the window ends
    clock.advance(60)
    for task in queue.read_schedule(datetime.datetime.fromtimestamp(clock())):
        queue.enqueue(task)
    drain(queue)
    assert ran == [0, 1, 2]
