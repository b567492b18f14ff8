"""The embedded consumer: ``queue.create_consumer(workers=2, worker_type='thread')``,
``start()`` and ``stop(graceful=...)`` inside the application's own process, on each backend.

Tasks here run in this process's threads, so they synchronise with the test through
threading.Event; every wait is bounded.
"""
from __future__ import annotations

import signal
import threading
import time

import pytest

from sqlq import ConfigurationError
from sqlq.consumer import CHECKPOINT_CLEARANCE, CHECKPOINT_INTERVAL, checkpoint_time
from sqlq.signals import SIGNAL_INTERRUPTED

WAIT = 10  # seconds: bound of every wait in this file

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM)


def _start(queue, consumers, **options):
    options.setdefault('workers', 2)
    options.setdefault('worker_type', 'thread')
    options.setdefault('health_check_interval', 0.2)
    consumer = queue.create_consumer(**options)
    consumers.append(consumer)
    consumer.start()
    return consumer


def _wait(predicate, what):
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, 'timed out waiting for %s' % what
        time.sleep(0.01)  # polling interval of a bounded wait


def _blocking_task(queue, log):
    """A task that reports its start and runs until released (in short slices, so a thread
    worker can be interrupted)."""
    started = threading.Event()
    release = threading.Event()

    @queue.task()
    def block(tag):
        log.append(('start', tag))
        started.set()
        while not release.wait(0.02):
            pass
        log.append(('finish', tag))
        return 'done %s' % tag

    return block, started, release


def test_start_stop_runs_tasks_and_installs_no_signal_handlers(queue, consumers):
    before = {s: signal.getsignal(s) for s in HANDLED_SIGNALS}

    @queue.task()
    def add(a, b):
        return a + b

    consumer = _start(queue, consumers)
    assert {s: signal.getsignal(s) for s in HANDLED_SIGNALS} == before
    results = add.map([(i, i) for i in range(20)])
    assert results.get(blocking=True, timeout=WAIT) == [2 * i for i in range(20)]
    consumer.stop(graceful=True, timeout=WAIT)
    assert {s: signal.getsignal(s) for s in HANDLED_SIGNALS} == before
    assert queue.pending_count() == 0 and queue.running_count() == 0


def test_graceful_stop_lets_the_running_task_finish_and_starts_no_new_one(queue, consumers):
    log = []
    block, started, release = _blocking_task(queue, log)
    consumer = _start(queue, consumers, workers=1)
    running = block('A')
    assert started.wait(WAIT)
    queued = block('B')

    stopper = threading.Thread(target=consumer.stop, kwargs={'graceful': True})
    stopper.start()
    # stop() tells the workers to take no new task before it waits for the running one
    _wait(consumer._stop_event.is_set, 'stop() to signal the workers')
    assert stopper.is_alive()                      # waiting for A, which is still blocked
    release.set()
    stopper.join(WAIT)
    assert not stopper.is_alive()
    assert running.get(blocking=True, timeout=WAIT) == 'done A'
    assert log == [('start', 'A'), ('finish', 'A')]
    assert queue.pending_count() == 1 and queue.running_count() == 0
    assert not queued.is_ready()


def test_immediate_stop_interrupts_the_running_task_and_returns_it(queue, consumers):
    log = []
    interrupted = []
    queue.signal(SIGNAL_INTERRUPTED)(lambda sig, task, *extra: interrupted.append(task.id))
    block, started, release = _blocking_task(queue, log)
    consumer = _start(queue, consumers, workers=1)
    running = block('A')
    assert started.wait(WAIT)
    consumer.stop(graceful=False)
    assert log == [('start', 'A')]                 # never finished
    assert interrupted == [running.id]
    assert queue.pending_count() == 1 and queue.running_count() == 0
    assert not running.is_ready()
    # the task is intact: a new consumer runs it to completion
    release.set()
    _start(queue, consumers, workers=1)
    assert running.get(blocking=True, timeout=WAIT) == 'done A'


def test_graceful_stop_with_timeout_interrupts_a_task_that_outlives_it(queue, consumers):
    log = []
    block, started, release = _blocking_task(queue, log)
    consumer = _start(queue, consumers, workers=1)
    running = block('A')
    assert started.wait(WAIT)
    consumer.stop(graceful=True, timeout=0.2)
    assert log == [('start', 'A')]
    assert queue.pending_count() == 1 and not running.is_ready()
    release.set()


def test_scheduled_task_runs_after_its_eta(queue, consumers):
    @queue.task()
    def when():
        return queue.clock()

    _start(queue, consumers, scheduler_interval=0.1)
    result = when.schedule(delay=0.3)
    from sqlq._time import to_timestamp
    eta = to_timestamp(result.task.eta, queue.utc)
    assert result.get(blocking=True, timeout=WAIT) >= eta


def test_max_tasks_recycles_thread_workers(queue, consumers):
    @queue.task()
    def ident(i):
        return i, threading.get_ident()

    _start(queue, consumers, workers=1, max_tasks=2)
    values = ident.map([(i,) for i in range(6)]).get(blocking=True, timeout=WAIT)
    assert [i for i, _ in values] == list(range(6))


def test_consumer_cannot_start_twice(queue, consumers):
    consumer = _start(queue, consumers, workers=1)
    with pytest.raises(RuntimeError):
        consumer.start()


@pytest.mark.parametrize('options', [
    {'workers': 0}, {'workers': 'two'}, {'worker_type': 'fiber'}, {'max_tasks': 0},
    {'health_check_interval': 0},
])
def test_bad_consumer_options_are_configuration_errors(queue, options):
    with pytest.raises(ConfigurationError):
        queue.create_consumer(**options)


def test_greenlet_workers_without_gevent_name_the_extra(queue):
    try:
        import gevent  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip('gevent is installed')
    with pytest.raises(ConfigurationError, match=r'sqlq\[gevent\]'):
        queue.create_consumer(worker_type='greenlet')


def test_a_checkpoint_waits_for_a_tick_due_within_its_clearance():
    """Issue 17, item 4: the loop's WAL checkpoint (milliseconds when it syncs the file) is put
    off until just after a scheduler tick due within CHECKPOINT_CLEARANCE, so that an eta is
    not late by it -- never by more than CHECKPOINT_INTERVAL past its plan."""
    now = 1000.0
    assert checkpoint_time(now, now, now + 1.0) == now  # no tick soon: as planned
    soon = now + CHECKPOINT_CLEARANCE / 2
    assert now < checkpoint_time(now, now, soon) <= soon + 0.002  # after the tick
    assert checkpoint_time(now, now + 0.5, soon) == now + 0.5  # planned later anyway
    # a stream of ticks never starves it: at most one interval past the plan
    late = now - CHECKPOINT_INTERVAL
    assert checkpoint_time(now, late, soon) == late
