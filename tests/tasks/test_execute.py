"""``queue.execute(task)``: the state machine a worker drives for every task.

Order (huey): expired? -> revoked? -> pre-execute hooks -> run -> store result or error ->
retry bookkeeping -> post-execute hooks. Also covers store_none, error metadata, retries with
retry_delay / retry_backoff, RetryTask, CancelExecution, periodic tasks and context tasks.
"""
from __future__ import annotations

import datetime
import threading
import time

import pytest

from sqlq import CancelExecution, Error, RetryTask, TaskException, crontab
from sqlq.execution import EARLY_WAIT
from tests._clock import FakeClock
from tests._helpers import drain

NOW = datetime.datetime.now
SEC = datetime.timedelta(seconds=1)


# --------------------------------------------------------------------------- results

def test_return_value_is_stored(queue):
    @queue.task()
    def add(a, b):
        return a + b

    res = add(2, 3)
    drain(queue)
    assert queue.result_count() == 1
    assert res.get() == 5


def test_none_is_not_stored_by_default(queue):
    @queue.task()
    def nothing():
        return None

    res = nothing()
    drain(queue)
    assert queue.result_count() == 0
    assert res.get() is None
    assert res.is_ready() is False


def test_store_none_stores_none(make_queue):
    queue = make_queue(store_none=True)

    @queue.task()
    def nothing():
        return None

    res = nothing()
    drain(queue)
    assert queue.result_count() == 1
    assert res.is_ready() is True
    assert res.get() is None


def test_dequeued_task_is_removed_once_executed(queue):
    @queue.task()
    def job():
        return 1

    job()
    task = queue.dequeue()
    assert queue.pending_count() == 0          # claimed tasks are not pending
    assert queue.dequeue() is None             # nor handed out twice
    queue.execute(task)
    assert queue.dequeue() is None
    assert len(queue) == 0


# --------------------------------------------------------------------------- errors

def test_error_is_stored_as_task_exception_with_metadata(queue):
    @queue.task()
    def bad(x):
        raise ValueError('bad value %s' % x)

    res = bad(7)
    drain(queue)
    with pytest.raises(TaskException) as excinfo:
        res.get()
    meta = excinfo.value.metadata
    assert 'ValueError' in meta['error'] and 'bad value 7' in meta['error']
    assert 'Traceback' in meta['traceback'] and 'bad value 7' in meta['traceback']
    assert meta['task_id'] == res.id
    assert meta['retries'] == 0


def test_raw_error_object_is_in_result_store(queue):
    @queue.task()
    def bad():
        raise KeyError('k')

    res = bad()
    drain(queue)
    raw = res.get_raw_result()
    assert isinstance(raw, Error)
    assert 'KeyError' in raw.metadata['error']


def test_failed_task_without_retries_is_not_requeued(queue):
    @queue.task()
    def bad():
        raise RuntimeError

    bad()
    assert drain(queue) == 1
    assert queue.pending_count() == 0
    assert queue.scheduled_count() == 0


# --------------------------------------------------------------------------- retries

def test_retries_rerun_until_exhausted(queue):
    attempts = []

    @queue.task(retries=2)
    def flaky():
        attempts.append(1)
        raise ValueError('nope')

    res = flaky()
    assert drain(queue) == 3                    # 1 run + 2 retries, delay 0 -> re-enqueued
    assert len(attempts) == 3
    with pytest.raises(TaskException) as excinfo:
        res.get()
    assert excinfo.value.metadata['retries'] == 0
    assert queue.pending_count() == 0


def test_retry_succeeds_on_later_attempt(queue):
    attempts = []

    @queue.task(retries=3)
    def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            raise ValueError('transient')
        return 'done'

    res = flaky()
    drain(queue)
    assert len(attempts) == 3
    assert res.get() == 'done'


def test_retries_decrement_on_the_requeued_task(queue):
    @queue.task(retries=2, context=True)
    def flaky(task=None):
        raise ValueError(task.retries)

    flaky()
    first = queue.dequeue()
    assert first.retries == 2
    queue.execute(first)
    second = queue.dequeue()
    assert second.id == first.id
    assert second.retries == 1


def test_retry_delay_schedules_retry(make_queue):
    queue = make_queue(utc=False)

    @queue.task(retries=1, retry_delay=30)
    def flaky():
        raise ValueError

    flaky()
    task = queue.dequeue()
    before = NOW()
    queue.execute(task)
    after = NOW()
    assert queue.pending_count() == 0
    [retry] = queue.scheduled()
    assert retry.id == task.id and retry.retries == 0
    assert before + 30 * SEC - SEC / 10 <= retry.eta <= after + 30 * SEC + SEC / 10


def test_retry_task_exception_retries_without_consuming_retries(queue):
    attempts = []

    @queue.task(retries=0)
    def needs_retry():
        attempts.append(1)
        if len(attempts) < 3:
            raise RetryTask()
        return len(attempts)

    res = needs_retry()
    assert drain(queue) == 3
    assert res.get() == 3


def test_retry_task_with_delay_and_eta(make_queue):
    queue = make_queue(utc=False)
    eta = NOW() + datetime.timedelta(hours=2)

    @queue.task(retries=2)
    def later(kind):
        if kind == 'delay':
            raise RetryTask(delay=120)
        raise RetryTask(eta=eta)

    later('delay')
    later('eta')
    before = NOW()
    drain(queue)
    sched = {t.args[0]: t for t in queue.scheduled()}
    assert set(sched) == {'delay', 'eta'}
    assert before + 119 * SEC <= sched['delay'].eta <= NOW() + 121 * SEC
    assert abs((sched['eta'].eta - eta).total_seconds()) < 1
    assert sched['delay'].retries == 2 and sched['eta'].retries == 2


# --------------------------------------------------------------------------- expires

def test_expired_task_is_not_run(make_queue):
    queue = make_queue(utc=False)
    ran = []

    @queue.task(expires=10)
    def job():
        ran.append(1)
        return 1

    res = job()
    task = queue.dequeue()
    queue.execute(task, timestamp=NOW() + 11 * SEC)
    assert ran == []
    assert res.get() is None
    assert queue.pending_count() == 0


def test_unexpired_task_runs(make_queue):
    queue = make_queue(utc=False)

    @queue.task(expires=datetime.timedelta(seconds=60))
    def job():
        return 'ran'

    res = job()
    drain(queue)
    assert res.get() == 'ran'


def test_expires_as_datetime_per_call(make_queue):
    queue = make_queue(utc=False)
    ran = []

    @queue.task()
    def job(x):
        ran.append(x)

    job.schedule((1,), expires=NOW() - SEC)            # already expired
    job.schedule((2,), expires=NOW() + 3600 * SEC)
    drain(queue)
    assert ran == [2]


# --------------------------------------------------------------------------- revoke / restore

def test_revoked_instance_is_skipped(queue):
    ran = []

    @queue.task()
    def job(x):
        ran.append(x)
        return x

    r1 = job(1)
    r2 = job(2)
    r1.revoke()
    assert r1.is_revoked() is True
    assert r2.is_revoked() is False
    drain(queue)
    assert ran == [2]
    assert r1.get() is None
    assert r2.get() == 2


def test_restored_instance_runs(queue):
    @queue.task()
    def job():
        return 'ok'

    res = job()
    res.revoke()
    res.restore()
    assert res.is_revoked() is False
    drain(queue)
    assert res.get() == 'ok'


def test_revoke_all_instances_of_a_task_and_restore(queue):
    ran = []

    @queue.task()
    def job(x):
        ran.append(x)

    @queue.task()
    def other(x):
        ran.append(('other', x))

    job.revoke()
    assert job.is_revoked() is True
    job(1)
    job(2)
    other(3)
    drain(queue)
    assert ran == [('other', 3)]
    job.restore()
    assert job.is_revoked() is False
    job(4)
    drain(queue)
    assert ran == [('other', 3), 4]


def test_revoke_once_skips_exactly_one_instance(queue):
    ran = []

    @queue.task()
    def job(x):
        ran.append(x)

    job.revoke(revoke_once=True)
    job(1)
    job(2)
    job(3)
    drain(queue)
    assert ran == [2, 3]
    assert job.is_revoked() is False


def test_revoke_until_expires(make_queue):
    queue = make_queue(utc=False)

    @queue.task()
    def job():
        return 1

    until = NOW() + 60 * SEC
    job.revoke(revoke_until=until)
    assert job.is_revoked() is True
    assert job.is_revoked(timestamp=until - SEC) is True
    assert job.is_revoked(timestamp=until + SEC) is False
    res = job()
    task = queue.dequeue()
    queue.execute(task, timestamp=until + SEC)          # revocation over by then
    assert res.get() == 1


def test_revoke_by_id_and_restore_by_id(queue):
    ran = []

    @queue.task()
    def job(x):
        ran.append(x)

    r1 = job(1)
    r2 = job(2)
    queue.revoke_by_id(r1.id)
    queue.revoke_by_id(r2.id)
    assert queue.is_revoked(r1.id) is True
    queue.restore_by_id(r2.id)
    drain(queue)
    assert ran == [2]


def test_revoke_all_and_restore_all_on_task_class(queue):
    ran = []

    @queue.task()
    def job(x):
        ran.append(x)

    queue.revoke_all(job.task_class)
    job(1)
    drain(queue)
    queue.restore_all(job.task_class)
    job(2)
    drain(queue)
    assert ran == [2]


def test_is_revoked_peek_does_not_consume_revoke_once(queue):
    @queue.task()
    def job():
        return 1

    res = job()
    res.revoke(revoke_once=True)
    for _ in range(3):
        assert queue.is_revoked(res.id, peek=True) is True
    drain(queue)
    assert res.get() is None


# --------------------------------------------------------------------------- hooks / cancel

def test_pre_execute_cancel_execution_skips_task(queue):
    ran = []

    @queue.task()
    def job(x):
        ran.append(x)
        return x

    @queue.pre_execute()
    def gate(task):
        if task.args == (13,):
            raise CancelExecution()

    r13 = job(13)
    r1 = job(1)
    drain(queue)
    assert ran == [1]
    assert r13.get() is None
    assert r1.get() == 1
    assert queue.pending_count() == 0 and queue.scheduled_count() == 0


def test_pre_execute_hook_error_does_not_cancel(queue):
    @queue.task()
    def job():
        return 'ran'

    @queue.pre_execute()
    def broken(task):
        raise RuntimeError('hook bug')

    res = job()
    drain(queue)
    assert res.get() == 'ran'


def test_hooks_run_in_registration_order_with_arguments(queue):
    seen = []

    @queue.task()
    def job(x):
        if x < 0:
            raise ValueError('neg')
        return x * 2

    @queue.pre_execute()
    def first(task):
        seen.append(('pre1', task.args))

    def second(task):
        seen.append(('pre2', task.args))
    queue.register_pre_execute('second', second)

    @queue.post_execute()
    def post(task, value, exc):
        seen.append(('post', task.args, value, type(exc).__name__ if exc else None))

    job(5)
    job(-1)
    drain(queue)
    assert seen == [('pre1', (5,)), ('pre2', (5,)), ('post', (5,), 10, None),
                    ('pre1', (-1,)), ('pre2', (-1,)), ('post', (-1,), None, 'ValueError')]

    queue.unregister_pre_execute('second')
    seen.clear()
    job(1)
    drain(queue)
    assert [s[0] for s in seen] == ['pre1', 'post']


def test_cancel_execution_in_task_with_retry_false_is_not_retried(queue):
    attempts = []

    @queue.task(retries=3)
    def job():
        attempts.append(1)
        raise CancelExecution(retry=False)

    job()
    drain(queue)
    assert len(attempts) == 1
    assert queue.pending_count() == 0 and queue.scheduled_count() == 0


def test_cancel_execution_in_task_default_uses_retries(queue):
    attempts = []

    @queue.task(retries=2)
    def job():
        attempts.append(1)
        raise CancelExecution()

    job()
    drain(queue, limit=10)
    assert len(attempts) == 3


# --------------------------------------------------------------------------- periodic

def test_read_periodic_returns_matching_tasks(queue):
    @queue.periodic_task(crontab(minute='*/15'))
    def quarter():
        return 'q'

    @queue.periodic_task(crontab(minute='0', hour='3'))
    def nightly():
        return 'n'

    at_0315 = datetime.datetime(2024, 5, 1, 3, 15)
    at_0300 = datetime.datetime(2024, 5, 1, 3, 0)
    at_0301 = datetime.datetime(2024, 5, 1, 3, 1)
    assert [t.name for t in queue.read_periodic(at_0315)] == [quarter.name]
    assert sorted(t.name for t in queue.read_periodic(at_0300)) == sorted([quarter.name,
                                                                           nightly.name])
    assert queue.read_periodic(at_0301) == []


def test_periodic_task_validate_datetime_and_no_result_stored(queue):
    calls = []

    @queue.periodic_task(crontab(minute='30', hour='*/2'))
    def tick():
        calls.append(1)
        return 'value'

    assert tick.task_class.validate_datetime(datetime.datetime(2024, 1, 1, 4, 30)) is True
    assert tick.task_class.validate_datetime(datetime.datetime(2024, 1, 1, 5, 30)) is False
    for task in queue.read_periodic(datetime.datetime(2024, 1, 1, 4, 30)):
        queue.enqueue(task)
    drain(queue)
    assert calls == [1]
    assert queue.result_count() == 0


def test_periodic_task_with_custom_validator(queue):
    def on_even_minutes(dt):
        return dt.minute % 2 == 0

    @queue.periodic_task(on_even_minutes)
    def even():
        return 1

    assert len(queue.read_periodic(datetime.datetime(2024, 1, 1, 0, 2))) == 1
    assert queue.read_periodic(datetime.datetime(2024, 1, 1, 0, 3)) == []


# --------------------------------------------------------------------------- context

def test_context_true_passes_the_task(queue):
    @queue.task(context=True)
    def introspect(x, task=None):
        return (x, task.id, task.retries)

    res = introspect(1)
    drain(queue)
    assert res.get() == (1, res.id, 0)


class Resource:
    def __init__(self):
        self.log = []

    def __enter__(self):
        self.log.append('enter')
        return 'conn'

    def __exit__(self, *exc):
        self.log.append('exit' if exc[0] is None else 'exit-error')
        return False


def test_context_task_wraps_execution(queue):
    resource = Resource()

    @queue.context_task(resource)
    def job(x):
        resource.log.append(('run', x))
        return x

    res = job(3)
    assert resource.log == []                    # entered at execution, not at call
    drain(queue)
    assert resource.log == ['enter', ('run', 3), 'exit']
    assert res.get() == 3


def test_context_task_as_argument_and_error_exit(queue):
    resource = Resource()

    @queue.context_task(resource, as_argument=True, retries=0)
    def job(conn, x):
        if x < 0:
            raise ValueError
        return (conn, x)

    ok = job(1)
    bad = job(-1)
    drain(queue)
    assert ok.get() == ('conn', 1)
    with pytest.raises(TaskException):
        bad.get()
    assert resource.log == ['enter', 'exit', 'enter', 'exit-error']


# --------------------------------------------------------------------------- injectable clock


def promote_due(queue, clock):
    """What the consumer's scheduler does: move due scheduled tasks to the queue."""
    at = datetime.datetime.fromtimestamp(clock())
    for task in queue.read_schedule(at):
        queue.enqueue(task)


def test_retry_backoff_delays_with_clock(make_queue):
    clock = FakeClock()
    queue = make_queue(utc=False, clock=clock)
    attempts = []

    @queue.task(retries=3, retry_delay=10, retry_backoff=3)
    def flaky():
        attempts.append(clock())
        raise ValueError

    flaky()
    queue.execute(queue.dequeue())
    for expected in (10, 30, 90):
        [retry] = queue.scheduled()
        delay = (retry.eta - datetime.datetime.fromtimestamp(clock())).total_seconds()
        assert abs(delay - expected) < 1e-3, (expected, delay)
        clock.advance(expected - 1)
        promote_due(queue, clock)
        assert queue.dequeue() is None               # not due one second early
        clock.advance(1)
        promote_due(queue, clock)
        task = queue.dequeue()
        assert task is not None
        queue.execute(task)
    assert len(attempts) == 4
    assert queue.scheduled_count() == 0 and queue.pending_count() == 0


def test_expires_is_resolved_at_enqueue_time(make_queue):
    clock = FakeClock()
    queue = make_queue(utc=False, clock=clock)
    ran = []

    @queue.task(expires=10)
    def job(x):
        ran.append(x)

    job('late')
    clock.advance(11)                  # 11s after enqueue: expired even though just dequeued
    job('fresh')
    drain(queue)
    assert ran == ['fresh']


def test_scheduled_task_runs_when_clock_reaches_eta(make_queue):
    clock = FakeClock()
    queue = make_queue(utc=False, clock=clock)

    @queue.task()
    def job():
        return 'ran'

    res = job.schedule(delay=300)
    clock.advance(299)
    promote_due(queue, clock)
    assert drain(queue) == 0
    clock.advance(1)
    promote_due(queue, clock)
    assert drain(queue) == 1
    assert res.get() == 'ran'


def test_a_task_claimed_a_moment_before_its_eta_runs_at_its_eta(make_queue):
    """Issue 17, item 4: the scheduler moves a task Scheduler.lead seconds early; a worker
    that gets it before its eta waits the rest out (up to EARLY_WAIT), then runs it -- not
    back to the schedule. Further ahead, it goes back."""
    queue = make_queue()
    ran = []

    @queue.task()
    def job(tag):
        ran.append((tag, time.time()))
        return tag

    soon = job.s('soon')
    soon.eta = datetime.datetime.fromtimestamp(time.time() + EARLY_WAIT / 2,
                                               datetime.timezone.utc)
    later = job.s('later')
    later.eta = datetime.datetime.fromtimestamp(time.time() + 60, datetime.timezone.utc)
    for task in (soon, later):
        queue.storage.enqueue(queue.serialize_task(task), 0)  # ready ahead of its eta
    assert drain(queue) == 2
    assert [tag for tag, _ in ran] == ['soon']
    assert ran[0][1] >= soon.eta.timestamp()  # never before its eta
    assert queue.pending_count() == 0 and queue.scheduled_count() == 1  # 'later'


def test_startup_and_shutdown_hooks_run_per_worker(make_queue):
    queue = make_queue()
    started = threading.Event()
    stopped = threading.Event()
    calls = []

    @queue.on_startup()
    def up():
        calls.append('up')
        started.set()

    @queue.on_shutdown()
    def down():
        calls.append('down')
        stopped.set()

    @queue.task()
    def job():
        return 'done'

    consumer = queue.create_consumer(workers=1, worker_type='thread', periodic=False)
    consumer.start()
    try:
        assert started.wait(10)
        res = job()
        assert res.get(blocking=True, timeout=10, max_delay=0.05) == 'done'
    finally:
        consumer.stop(graceful=True, timeout=10)
    assert stopped.wait(10)
    assert calls == ['up', 'down']


# --------------------------------------------------------------------------- more state machine

def test_intermediate_error_is_readable_until_retry_succeeds(make_queue):
    clock = FakeClock()
    queue = make_queue(utc=False, clock=clock)
    attempts = []

    @queue.task(retries=1, retry_delay=60)
    def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError('first attempt')
        return 'second attempt'

    res = flaky()
    drain(queue)
    with pytest.raises(TaskException) as excinfo:
        res.get(preserve=True)
    assert excinfo.value.metadata['retries'] == 1          # retries left when it failed
    clock.advance(60)
    promote_due(queue, clock)
    drain(queue)
    res.reset()
    assert res.get() == 'second attempt'


def test_revoked_scheduled_task_is_skipped_when_due(make_queue):
    clock = FakeClock()
    queue = make_queue(utc=False, clock=clock)
    ran = []

    @queue.task()
    def job():
        ran.append(1)

    res = job.schedule(delay=10)
    res.revoke()
    clock.advance(11)
    promote_due(queue, clock)
    drain(queue)
    assert ran == []
    assert queue.scheduled_count() == 0 and queue.pending_count() == 0


def test_cooperative_timeout_fails_task_with_task_timeout(queue):
    import time

    from sqlq.signals import SIGNAL_TIMEOUT
    fired = []
    queue.signal(SIGNAL_TIMEOUT)(lambda s, t, *e: fired.append(t.id))

    @queue.task(timeout=0.05, context=True)
    def slow(task=None):
        deadline = time.monotonic() + 5
        while not task.is_timed_out and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        task.check_timeout()
        return 'finished'

    res = slow()
    drain(queue)
    with pytest.raises(TaskException) as excinfo:
        res.get()
    assert 'TaskTimeout' in excinfo.value.metadata['error']
    assert fired == [res.id]
