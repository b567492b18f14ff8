"""Rate limits as in huey 3.5: the RateLimit object's API, ``limit=0``, a picklable
RateLimitExceeded, and how the limiter's ``retry`` combines with the task's retries."""
from __future__ import annotations

import pickle

import pytest

from sqlq import RateLimit, RateLimitExceeded, TaskException
from tests._clock import FakeClock
from tests._helpers import drain

WINDOW_START = 1_700_000_000.0 - (1_700_000_000.0 % 60)


@pytest.fixture
def clocked(make_queue):
    """A queue on a fake clock at the start of a 60-second window."""
    clock = FakeClock(start=WINDOW_START)
    return make_queue(clock=clock), clock


def wait_of(queue, task):
    """Seconds from now until ``task``'s eta."""
    return queue.time.to_timestamp(task.eta) - queue.now()


def test_rate_limit_api_acquire_current_usage_reset(clocked):
    """huey: RateLimit.acquire() counts an entry or raises RateLimitExceeded;
    current_usage() counts the window's entries (refused ones too); reset() starts afresh."""
    queue, clock = clocked
    limiter = queue.rate_limit('api', limit=2, per=60)
    assert isinstance(limiter, RateLimit)
    assert limiter.current_usage() == 0
    limiter.acquire()
    limiter.acquire()
    assert limiter.current_usage() == 2
    with pytest.raises(RateLimitExceeded) as info:
        limiter.acquire()
    assert (info.value.key, info.value.retry) == ('api', True)
    assert 0 < info.value.delay <= 60
    assert limiter.current_usage() == 3
    limiter.reset()
    assert limiter.current_usage() == 0
    limiter.acquire()
    clock.advance(60)                         # the next window
    assert limiter.current_usage() == 0


def test_rate_limit_as_decorator_and_context_manager(queue):
    """huey: the RateLimit is usable as a decorator or a context manager."""
    limiter = queue.rate_limit('both', limit=2, per=3600)

    @limiter
    def call():
        return 'called'

    assert call() == 'called'
    with limiter:
        pass
    with pytest.raises(RateLimitExceeded):
        call()


def test_limit_zero_is_always_exceeded(queue):
    """huey: limit=0 lets nothing through."""
    limiter = queue.rate_limit('closed', limit=0, per=60, retry=False)
    with pytest.raises(RateLimitExceeded):
        limiter.acquire()
    with pytest.raises(RateLimitExceeded):
        with limiter:
            pass

    @queue.task()
    @limiter
    def job():
        return 'ran'

    result = job()
    drain(queue)
    with pytest.raises(TaskException) as info:
        result.get()
    assert info.value.metadata['error'].startswith("RateLimitExceeded('closed', ")


def test_rate_limit_exceeded_is_picklable():
    """huey: RateLimitExceeded(key, delay, retry) survives pickling (an error handler gets
    it through the queue)."""
    exc = RateLimitExceeded('api', 12.5, retry=False)
    copy = pickle.loads(pickle.dumps(exc))
    assert (copy.key, copy.delay, copy.retry) == ('api', 12.5, False)
    assert repr(copy) == "RateLimitExceeded('api', 12.5, False)"
    assert 'api' in str(copy)


def test_error_handler_receives_the_final_rate_limit_exception(queue):
    """huey: the on_error handler of a task refused for good gets the RateLimitExceeded."""
    received = []

    @queue.task()
    def handler(exc):
        received.append((type(exc).__name__, exc.key, exc.retry))

    @queue.task()
    @queue.rate_limit('strict', limit=0, per=60, retry=False)
    def job():
        return 'ran'

    queue.enqueue(job.s().error(handler))
    drain(queue)
    assert received == [('RateLimitExceeded', 'strict', False)]


def test_retry_false_with_task_retries_uses_one_after_the_retry_delay(clocked):
    """huey: retry=False on a task with retries: the retry uses one of the task's retries and
    waits the task's retry_delay; nothing is stored meanwhile."""
    queue, clock = clocked

    @queue.task(retries=2, retry_delay=120)
    @queue.rate_limit('sync', limit=0, per=60, retry=False)
    def sync():
        return 'synced'

    result = sync()
    drain(queue)
    assert result.get(preserve=True) is None      # not an error yet: retried later
    [retry] = queue.scheduled()
    assert retry.id == result.id and retry.retries == 1
    assert wait_of(queue, retry) == pytest.approx(120)


def test_retry_false_with_task_retries_and_no_delay_waits_for_the_next_window(clocked):
    """huey: without a retry_delay the retry waits for the next rate-limit window."""
    queue, clock = clocked
    clock.advance(15)

    @queue.task(retries=1)
    @queue.rate_limit('sync', limit=0, per=60, retry=False)
    def sync():
        return 'synced'

    result = sync()
    drain(queue)
    [retry] = queue.scheduled()
    assert retry.retries == 0
    assert wait_of(queue, retry) == pytest.approx(45)
    clock.advance(45)
    queue.enqueue_due()
    drain(queue)
    with pytest.raises(TaskException):            # still limited, no retry left
        result.get()
    assert queue.scheduled_count() == 0


def test_retry_true_keeps_the_tasks_retries_and_honours_its_retry_delay(clocked):
    """huey: retry=True retries without using the task's retries, after the task's
    retry_delay if it has one (else at the next window)."""
    queue, clock = clocked

    @queue.task(retries=2, retry_delay=100)
    @queue.rate_limit('gentle', limit=0, per=60)
    def delayed():
        return 1

    @queue.task(retries=2)
    @queue.rate_limit('gentle', limit=0, per=60)
    def windowed():
        return 1

    delayed()
    windowed()
    drain(queue)
    waits = {task.name.rsplit('.', 1)[-1]: (task.retries, round(wait_of(queue, task)))
             for task in queue.scheduled()}
    assert waits == {'delayed': (2, 100), 'windowed': (2, 60)}
