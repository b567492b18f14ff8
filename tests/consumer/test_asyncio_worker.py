"""The asyncio worker, embedded (``queue.create_consumer(worker_type='asyncio', workers=N)``) on
each backend: ``async def`` tasks run on one event loop, N at once; plain tasks in a thread
pool; timeouts cancel the coroutine; retries, revocation, signals, graceful and immediate stops
and max-tasks recycling work as with thread workers, and a claim is held until its outcome is
committed. The command line and kill -9: tests/consumer/test_consume_command.py,
tests/reliability/test_nothing_lost.py.

Tasks synchronise with the test through threading.Event (or an asyncio.Event on the worker's
loop); every wait is bounded.
"""
from __future__ import annotations

import asyncio
import threading

import pytest

from sqlq import TaskException
from sqlq.signals import (
    SIGNAL_COMPLETE,
    SIGNAL_EXECUTING,
    SIGNAL_INTERRUPTED,
    SIGNAL_RETRYING,
    SIGNAL_REVOKED,
    SIGNAL_TIMEOUT,
)
from tests._helpers import wait_for

WAIT = 10  # seconds: bound of every wait in this file


@pytest.fixture
def start(queue, consumers):
    def start(workers=4, **options):
        consumer = queue.create_consumer(worker_type='asyncio', workers=workers,
                                         health_check_interval=0.2, **options)
        consumers.append(consumer)
        consumer.start()
        return consumer
    return start


@pytest.fixture
def signals(queue):
    seen = []
    queue.signal()(lambda signal, task, *extra: seen.append((signal, task.name)))
    return seen


def test_workers_is_how_many_tasks_run_at_once_on_the_loop(queue, start):
    """N tasks that can only finish once all N have started: they run concurrently."""
    n = 8
    shared = {'arrived': 0}

    @queue.task()
    async def meet(i):
        if 'all' not in shared:
            shared['all'] = asyncio.Event()
        shared['arrived'] += 1
        if shared['arrived'] == n:
            shared['all'].set()
        await asyncio.wait_for(shared['all'].wait(), WAIT)
        return threading.current_thread().name

    start(workers=n)
    threads = meet.map(range(n)).get(blocking=True, timeout=WAIT)
    assert len(set(threads)) == 1        # one event loop thread ran them all


def test_a_plain_task_runs_in_the_pool_without_blocking_the_loop(queue, start):
    """A blocking plain task waits for an event that only an async task sets: it would never
    come if the plain task ran on the loop."""
    released = threading.Event()

    @queue.task()
    def blocking():
        assert released.wait(WAIT)
        return threading.current_thread().name

    @queue.task()
    async def release():
        released.set()
        return threading.current_thread().name

    start(workers=2)
    plain = blocking()
    wait_for(lambda: queue.running_count() == 1 or plain.is_ready(), WAIT, 'the plain task')
    loop_thread = release().get(blocking=True, timeout=WAIT)
    pool_thread = plain.get(blocking=True, timeout=WAIT)
    assert '-sync' in pool_thread and loop_thread != pool_thread


def test_timeout_cancels_the_coroutine_and_the_worker_goes_on(queue, start, signals):
    cancelled = threading.Event()

    @queue.task(timeout=0.2)
    async def slow():
        try:
            await asyncio.sleep(WAIT * 3)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    @queue.task()
    async def quick():
        return 'quick'

    start(workers=1)
    timed_out = slow()
    with pytest.raises(TaskException, match='TaskTimeout'):
        timed_out.get(blocking=True, timeout=WAIT)
    assert cancelled.is_set()
    assert quick().get(blocking=True, timeout=WAIT) == 'quick'
    assert (SIGNAL_TIMEOUT, 'slow') in signals


def test_retries_revocation_and_signals(queue, start, signals):
    queue.store_intermediate_errors = False  # the Result holds the last attempt's value
    runs = []

    @queue.task(retries=2)
    async def flaky():
        runs.append(1)
        if len(runs) < 3:
            raise ValueError('not yet')
        return 'third time'

    @queue.task()
    async def revoked():
        runs.append('revoked ran')

    skipped = revoked()
    skipped.revoke()
    start(workers=2)
    assert flaky().get(blocking=True, timeout=WAIT) == 'third time'
    wait_for(lambda: (SIGNAL_REVOKED, 'revoked') in signals, WAIT, 'the revoke signal')
    assert 'revoked ran' not in runs and len(runs) == 3
    assert [s for s, name in signals if name == 'flaky'].count(SIGNAL_RETRYING) == 2
    # (sent once the outcome is committed: maybe just after the result was read)
    wait_for(lambda: (SIGNAL_COMPLETE, 'flaky') in signals, WAIT, 'the complete signal')
    assert (SIGNAL_EXECUTING, 'flaky') in signals


def test_a_claim_is_held_until_its_outcome_is_committed(queue, start):
    release = threading.Event()

    @queue.task()
    async def hold():
        while not release.is_set():
            await asyncio.sleep(0.01)  # polls the test's event without blocking the loop
        return 'held'

    start(workers=2)
    result = hold()
    wait_for(lambda: queue.running_count() == 1, WAIT, 'the task to be claimed')
    assert queue.pending_count() == 0
    release.set()
    assert result.get(blocking=True, timeout=WAIT) == 'held'
    wait_for(lambda: queue.running_count() == 0, WAIT, 'the claim to be released')


def test_graceful_stop_lets_running_tasks_finish(queue, start):
    started, release = threading.Event(), threading.Event()

    @queue.task()
    async def work(tag):
        started.set()
        while not release.is_set():
            await asyncio.sleep(0.01)
        return tag

    consumer = start(workers=2)
    result = work('a')
    assert started.wait(WAIT)
    stopper = threading.Thread(target=consumer.stop, kwargs=dict(graceful=True, timeout=WAIT))
    stopper.start()
    # stop() runs in another thread: b is enqueued once the workers were told to stop
    wait_for(consumer._stop_event.is_set, WAIT, 'stop() to signal the workers')
    waiting = work('b')      # enqueued after the stop began: not started
    release.set()
    stopper.join(WAIT)
    assert not stopper.is_alive()
    assert result.get() == 'a' and not waiting.is_ready()
    assert queue.pending_count() == 1 and queue.running_count() == 0


@pytest.mark.parametrize('backend', ['sqlite'], indirect=True)
def test_a_task_handed_to_the_idle_worker_stays_claimed_through_a_graceful_stop(
        queue, start, caplog):
    """A single enqueue hands its task to the idle claimer (SQLite's hand-off); the claimer's
    worker session, whose end releases what was handed to it, lasts until the run's outcome
    is committed: the task runs once and its outcome is not rejected as stale."""
    started, release = threading.Event(), threading.Event()
    runs = []

    @queue.task()
    async def handed():
        runs.append(1)
        started.set()
        while not release.is_set():
            await asyncio.sleep(0.01)
        return 'done'

    consumer = start(workers=2)
    storage = queue.storage
    wait_for(lambda: storage._rows('SELECT 1 FROM idle_worker'), WAIT, 'the worker to go idle')
    result = handed()
    assert started.wait(WAIT)
    stopper = threading.Thread(target=consumer.stop, kwargs=dict(graceful=True, timeout=WAIT))
    stopper.start()
    worker = consumer._handles[0].worker
    wait_for(lambda: worker._claimer_done.done(), WAIT, 'the claimer to stop claiming')
    release.set()            # the run ends after its claimer stopped
    stopper.join(WAIT)
    assert result.get() == 'done' and runs == [1]
    assert queue.pending_count() == 0 and queue.running_count() == 0
    assert 'rejected' not in caplog.text


def test_immediate_stop_cancels_coroutines_and_plain_tasks_and_returns_them(queue, start,
                                                                              signals):
    started = threading.Barrier(3, timeout=WAIT)

    @queue.task()
    async def forever():
        await asyncio.get_running_loop().run_in_executor(None, started.wait)
        await asyncio.sleep(WAIT * 3)

    @queue.task()
    def plain_forever():
        started.wait()
        while True:          # interruptible between instructions, as with thread workers
            threading.Event().wait(0.01)

    consumer = start(workers=2)
    forever(), plain_forever()
    started.wait()
    consumer.stop(graceful=False)
    assert queue.pending_count() == 2 and queue.running_count() == 0
    assert sorted(name for signal, name in signals if signal == SIGNAL_INTERRUPTED) == \
        ['forever', 'plain_forever']


def test_max_tasks_recycles_the_worker(queue, start):
    @queue.task()
    async def where():
        return id(asyncio.get_running_loop())

    consumer = start(workers=1, max_tasks=2)
    loops = [where().get(blocking=True, timeout=WAIT) for _ in range(5)]
    assert len(set(loops)) >= 2
    consumer.stop(graceful=True, timeout=WAIT)


def test_runs_are_recorded_in_the_history(queue, start):
    """The asyncio worker's outcomes (committed by its committer's OutcomeGroup) carry their
    runs' history entries: async and plain tasks, a retry and a failure, with their durations
    and this process's claims."""
    @queue.task()
    async def nap():
        await asyncio.sleep(0.01)
        return 'rested'

    @queue.task()
    def plain():
        return 'plain'

    @queue.task(retries=1)
    async def broken():
        raise ValueError('broken')

    start(workers=4)
    ok, sync, bad = nap(), plain(), broken()
    assert ok.get(blocking=True, timeout=WAIT) == 'rested'
    assert sync.get(blocking=True, timeout=WAIT) == 'plain'
    with pytest.raises(TaskException):  # stored by its first failure already, as huey's
        bad.get(blocking=True, timeout=WAIT)
    wait_for(lambda: queue.history(outcome='failed'), WAIT, 'the retry to fail for good')
    runs = {(entry.key, entry.outcome): entry for entry in queue.history()}
    assert sorted(runs) == sorted([(ok.id, 'succeeded'), (sync.id, 'succeeded'),
                                   (bad.id, 'retried'), (bad.id, 'failed')])
    assert runs[ok.id, 'succeeded'].duration >= 0.01
    assert 'broken' in runs[bad.id, 'failed'].error
    assert all(entry.owner == queue.storage.owner_id and entry.claimed_at is not None
               for entry in runs.values())
    assert [queue.status(r.id).state for r in (ok, sync, bad)] == \
        ['succeeded', 'succeeded', 'failed']
