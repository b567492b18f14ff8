"""The worker's fast path (issue 5): batch claims into a local priority buffer, outcomes
committed in groups, unstarted claims given back on stop, recovered claims run alone, storage
outages ridden out with back-off. Runs an in-process Worker (a thread with a stop event) on
each backend and on both fast-path implementations; tasks synchronise with the test through
threading.Event; every wait is bounded.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time

import pytest

from sqlq import worker as worker_module
from sqlq.exceptions import StorageError
from sqlq.outcomes import OutcomeGroup
from sqlq.signals import SIGNAL_COMPLETE
from sqlq.storage import EMPTY
from sqlq.worker import Worker
from tests._helpers import storage_outage, wait_for
from tests.storage._helpers import DEAD, as_owner

# The worker's claim buffer is the fast path's ClaimBuffer: run on both implementations.
pytestmark = pytest.mark.both_fastpaths

WAIT = 10  # seconds: bound of every wait in this file


@contextlib.contextmanager
def running(queue, mean_run=None, **options):
    """A Worker of ``queue`` running in a thread until the block ends (then stopped
    gracefully and joined; its errors fail the test). ``mean_run``: the worker starts with
    that run-time estimate (seconds per task), which sets its first claims' batch size."""
    stop = threading.Event()
    options.setdefault('idle_wait', 0.05)
    worker = Worker(queue, stop, name='test-worker', **options)
    if mean_run is not None:
        worker._mean_run = mean_run  # no public setter: the estimate follows measured runs
    errors = []

    def run():
        try:
            worker.run()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=run, name='test-worker', daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        stop.set()
        thread.join(WAIT)
    assert not thread.is_alive(), 'worker did not stop within %ss' % WAIT
    assert not errors, errors


def spy_claims(storage, reverse=False):
    """Record ``(limit, claims returned)`` of every ``storage.dequeue_many`` call; with
    ``reverse``, hand the claims over in reverse order (their order is unspecified)."""
    calls = []
    original = storage.dequeue_many

    def dequeue_many(limit):
        claims = original(limit)
        calls.append((limit, len(claims)))
        return claims[::-1] if reverse else claims

    storage.dequeue_many = dequeue_many
    return calls


def warm_up(queue, worker, size=4):
    """Run no-op tasks until the worker's measured run time makes it claim ``size`` or more
    tasks at once (a new worker claims one at a time)."""
    done = []

    @queue.task(name='warm_up')
    def warm(i):
        done.append(i)

    for _ in range(20):
        if worker.batch_size >= size:
            return
        before = len(done)
        warm.map(range(20))
        wait_for(lambda: len(done) == before + 20, WAIT, 'warm-up tasks')  # noqa: B023
    raise AssertionError('worker batch size stayed at %d' % worker.batch_size)


def blocking_task(queue):
    """A task that reports its start, then runs until released (bounded)."""
    started, release = threading.Event(), threading.Event()

    @queue.task(name='blocker', priority=100)
    def blocker():
        started.set()
        assert release.wait(WAIT), 'blocker was never released'
        return 'unblocked'

    return blocker, started, release


def results_of(queue, tasks):
    return [queue.get_raw(t.id, peek=True) for t in tasks]


def second_queue(make_queue, backend):
    if backend == 'memory':
        pytest.skip('a memory queue cannot be opened twice')
    return make_queue()


# ---------------------------------------------------------------------- batches and order

def test_fast_tasks_are_claimed_in_batches_and_run_by_priority(queue):
    ran = []

    @queue.task()
    def record(tag):
        ran.append(tag)
        return tag

    calls = spy_claims(queue.storage, reverse=True)
    tasks = []
    for i in range(60):
        task = record.s(i)
        task.priority = (i * 7) % 5 - 2  # storage order is not run order
        tasks.append(task)
    expected = [t.args[0] for t in sorted(tasks, key=lambda t: -t.priority)]
    with running(queue) as worker:
        warm_up(queue, worker)
        del calls[:]
        queue.enqueue_many(tasks)
        wait_for(lambda: len(ran) == 60, WAIT, 'the tasks')
        # the last outcomes commit with the worker's next (empty) claim, just after the runs
        wait_for(lambda: results_of(queue, tasks) == list(range(60)), WAIT, 'the outcomes')
    assert ran == expected
    assert max(n for _, n in calls) > 1, calls  # several mixed-priority tasks per claim
    assert all(limit <= worker_module.MAX_BATCH for limit, _ in calls)
    assert queue.pending_count() == 0 and queue.running_count() == 0


def test_slow_tasks_are_claimed_one_at_a_time(queue):
    calls = spy_claims(queue.storage)

    @queue.task()
    def slow(i):
        time.sleep(2 * worker_module.BATCH_WINDOW)  # the workload, not synchronisation
        return i

    results = slow.map(range(4))
    with running(queue):
        assert results.get(blocking=True, timeout=WAIT) == [0, 1, 2, 3]
    # a claim holds one slow task: the others stay free for other workers
    assert calls and all(limit == 1 for limit, _ in calls), calls


def test_max_tasks_bounds_the_batch(queue):
    ran = []

    @queue.task()
    def record(i):
        ran.append(i)

    calls = spy_claims(queue.storage)
    stop = threading.Event()
    worker = Worker(queue, stop, max_tasks=5, idle_wait=0.05)
    # As if tasks were instantaneous: a batch claim could take MAX_BATCH tasks (the run-time
    # estimate has no public setter; warming up would use up max_tasks).
    worker._mean_run = 1e-6
    record.map(range(20))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    thread.join(WAIT)
    assert not thread.is_alive(), 'the worker did not recycle after max_tasks'
    assert len(ran) == 5
    assert sum(n for _, n in calls) == 5, calls  # never claimed more than it may run
    assert queue.pending_count() == 15 and queue.running_count() == 0
    assert [t.attempts for t in _dequeue_all(queue)] == [1] * 15


def _dequeue_all(queue):
    tasks = []
    while True:
        task = queue.dequeue()
        if task is None:
            return tasks
        tasks.append(task)


# ---------------------------------------------------------------------- committed outcomes

def test_signals_and_post_execute_hooks_see_the_committed_result(queue, make_queue, backend):
    reader = second_queue(make_queue, backend)  # its own connection: sees commits only
    seen = []

    @queue.task()
    def square(i):
        return i * i

    @queue.signal(SIGNAL_COMPLETE)
    def on_complete(signal, task):
        if task.name == square.name:
            seen.append(('signal', task.args[0], reader.get_raw(task.id, peek=True)))

    @queue.post_execute()
    def after(task, value, exc):
        if task.name == square.name:
            seen.append(('hook', task.args[0], reader.get_raw(task.id, peek=True)))

    with running(queue) as worker:
        warm_up(queue, worker)
        results = square.map(range(30))
        assert results.get(blocking=True, timeout=WAIT, preserve=True) == \
            [i * i for i in range(30)]
        wait_for(lambda: len(seen) >= 60, WAIT, 'handlers of every task')
    assert sorted(seen) == sorted((kind, i, i * i) for kind in ('signal', 'hook')
                                  for i in range(30))


def test_worker_logs_a_line_per_task_start_and_end(queue, caplog):
    @queue.task()
    def noop():
        return 1

    caplog.set_level(logging.INFO, logger='sqlq.worker')
    result = noop()
    with running(queue):
        assert result.get(blocking=True, timeout=WAIT) == 1
    lines = [r.getMessage() for r in caplog.records if r.name == 'sqlq.worker']
    task = repr(result.task)
    assert 'Executing %s' % task in lines, lines
    assert any(line.startswith('%s executed in ' % task) for line in lines), lines


# ---------------------------------------------------------------------- groups

def doubling(queue):
    """A task doubling its argument, and the list of arguments of its completed runs."""
    completed = []

    @queue.task()
    def double(i):
        return 2 * i

    @queue.signal(SIGNAL_COMPLETE)
    def on_complete(signal, task):
        completed.append(task.args[0])

    return double, completed


def executed_in_a_group(queue, n):
    """Claim and execute ``n`` tasks as a worker does, their outcomes waiting in a group:
    (group, tasks, their receipts)."""
    group = OutcomeGroup(queue.storage, max_size=100, max_delay=60)
    with queue.grouping_outcomes(group):
        tasks = [queue.dequeue() for _ in range(n)]
        assert all(t is not None for t in tasks)
        receipts = [t.receipt for t in tasks]
        for task in tasks:
            queue.execute(task)
    assert len(group) == n and results_of(queue, tasks) == [EMPTY] * n  # not committed yet
    return group, tasks, receipts


@pytest.mark.parametrize('victim_kind', ['completion', 'with follower'])
def test_a_stale_claim_in_a_group_rejects_only_its_own_outcome(queue, caplog, victim_kind):
    double, completed = doubling(queue)
    victim = double.s(1)
    if victim_kind == 'with follower':  # an outcome that also enqueues: written on its own
        victim.then(double)
    queue.enqueue_many([double.s(0), victim, double.s(2)])
    group, tasks, receipts = executed_in_a_group(queue, 3)
    # another worker took the second task over (this one was presumed dead)
    assert queue.storage.release(receipts[1]) is True
    with as_owner(queue.storage, DEAD):
        taken = queue.storage.dequeue()
    assert taken.attempts == 2
    group.flush()
    assert len(group) == 0
    assert results_of(queue, tasks) == [0, EMPTY, 4]
    assert completed == [0, 2]
    assert queue.pending_count() == 0  # no follower of the rejected outcome
    assert queue.storage.claim_owners() == {DEAD: 1}  # the other run records its own outcome
    assert any('rejected' in r.getMessage() and tasks[1].id in r.getMessage()
               for r in caplog.records if r.levelno == logging.WARNING)


def test_an_outcome_that_cannot_be_written_becomes_a_dead_letter_and_the_others_commit(
        queue, caplog, monkeypatch):
    double, completed = doubling(queue)
    double.map(range(4))
    group, tasks, receipts = executed_in_a_group(queue, 4)
    storage = queue.storage
    victim = tasks[2].id
    put_data, complete_many = storage.put_data, storage.complete_many

    def failing_put_data(key, *args, **kwargs):
        if key == victim:
            raise RuntimeError('injected write failure')
        return put_data(key, *args, **kwargs)

    def failing_complete_many(items):
        if any(item[1] == victim for item in items):
            raise RuntimeError('injected write failure')
        return complete_many(items)

    # the victim's result can't be written, in bulk or alone
    monkeypatch.setattr(storage, 'put_data', failing_put_data)
    monkeypatch.setattr(storage, 'complete_many', failing_complete_many)
    group.flush()
    monkeypatch.undo()
    assert len(group) == 0
    assert results_of(queue, tasks) == [0, 2, EMPTY, 6]
    assert completed == [0, 1, 3]
    # undone alone, nothing of its outcome applied, and visible: a dead letter with the
    # reason (not a claim that no live worker would ever settle)
    assert storage.claimed_size() == 0 and storage.queue_size() == 0
    assert storage.ack(receipts[2]) is False
    [letter] = storage.dead_letters()
    assert 'could not be recorded' in letter.reason and 'injected write failure' in letter.reason
    assert queue.deserialize_task(letter.data).id == victim
    assert any('could not be recorded' in r.getMessage() and victim in r.getMessage()
               for r in caplog.records)


def test_a_task_whose_claim_is_taken_over_while_it_runs_is_not_recorded_twice(queue):
    runs = []
    completed = []

    @queue.task(context=True)
    def work(tag, task=None):
        runs.append((tag, task.attempts))
        if tag == 'victim' and task.attempts == 1:
            # as if presumed dead: its claim is given back while it runs
            assert queue.storage.release(task.receipt) is True
        return (tag, task.attempts)

    @queue.signal(SIGNAL_COMPLETE)
    def on_complete(signal, task):
        if task.name == work.name:
            completed.append(task.args[0])

    tasks = [work.s('a'), work.s('victim'), work.s('b'), work.s('c')]
    with running(queue) as worker:
        warm_up(queue, worker)
        queue.enqueue_many(tasks)
        wait_for(lambda: len(completed) == 4, WAIT, 'every task completed')
        assert results_of(queue, tasks) == [('a', 1), ('victim', 2), ('b', 1), ('c', 1)]
    assert sorted(completed) == ['a', 'b', 'c', 'victim']  # no COMPLETE for the rejected run
    assert sorted(runs) == [('a', 1), ('b', 1), ('c', 1), ('victim', 1), ('victim', 2)]
    assert queue.pending_count() == 0 and queue.running_count() == 0


# ---------------------------------------------------------------------- giving claims back

def test_stopping_gives_unstarted_claims_back(queue):
    blocker, started, release = blocking_task(queue)

    @queue.task()
    def later(i):
        return i

    first = blocker.s()
    with running(queue) as worker:
        warm_up(queue, worker)
        queue.enqueue_many([first] + [later.s(i) for i in range(9)])
        try:
            assert started.wait(WAIT)
            # one claim took the blocker and the next ones: they wait in the worker's buffer
            buffered = queue.running_count() - 1
            assert buffered >= 1 and queue.pending_count() == 9 - buffered
            worker.stop_event.set()  # graceful stop: the running task finishes
        finally:
            release.set()
    assert (queue.running_count(), queue.pending_count()) == (0, 9)
    assert queue.get_raw(first.id, peek=True) == 'unblocked'
    tasks = _dequeue_all(queue)
    assert [t.args[0] for t in tasks] == list(range(9))  # back in their places
    # a given-back claim counts as one attempt (attempts fence receipts), no more
    assert [t.attempts for t in tasks] == [2] * buffered + [1] * (9 - buffered)


def test_a_claim_made_as_the_stop_comes_is_given_back_not_run(queue):
    """A stop signalled while the worker claims (its check of the stop event came just before
    the claim): what that claim took is given back unstarted, not run after the stop."""
    ran = []

    @queue.task()
    def job(i):
        ran.append(i)

    stop = threading.Event()
    worker = Worker(queue, stop, name='test-worker', idle_wait=0.05)
    claim = worker._claim

    def claim_as_the_stop_comes():
        took = claim()
        stop.set()  # e.g. the consumer's stop(), in another thread, during the claim
        return took

    worker._claim = claim_as_the_stop_comes
    queue.enqueue_many([job.s(i) for i in range(3)])
    runner = threading.Thread(target=worker.run, daemon=True)
    runner.start()
    runner.join(WAIT)
    assert not runner.is_alive()
    assert ran == []
    assert (queue.running_count(), queue.pending_count()) == (0, 3)


def test_a_higher_priority_task_overtakes_the_buffered_claims(queue, backend):
    """Issue 17: a task of a higher priority than the claims a busy worker holds in its
    buffer, enqueued while it runs one of them, runs next: the worker checks its wake-ups
    before taking each buffered task and claims what outranks it."""
    if backend != 'sqlite':
        pytest.skip('producers tell busy workers their priority on SQLite only')
    blocker, started, release = blocking_task(queue)
    ran = []

    @queue.task()
    def later(i):
        ran.append(i)

    @queue.task(priority=5)
    def urgent(tag):
        ran.append(tag)

    with running(queue) as worker:
        warm_up(queue, worker)
        queue.enqueue_many([blocker.s()] + [later.s(i) for i in range(9)])
        try:
            assert started.wait(WAIT)
            # one claim took the blocker and the next ones: they wait in the worker's buffer
            assert queue.running_count() - 1 >= 1
            urgent('single')  # one enqueue, one commit
            urgent.map(['map'])  # a batch enqueue
        finally:
            release.set()
        wait_for(lambda: len(ran) == 11, WAIT, 'the tasks')
    assert ran[:2] == ['single', 'map'], ran  # before the rest of the batch claimed earlier
    assert ran[2:] == list(range(9))
    assert queue.pending_count() == 0 and queue.running_count() == 0


def test_a_recovered_claim_has_its_start_recorded_before_it_runs(queue):
    """A claim taken back from a dead worker may be what killed it: its start is recorded
    before it runs (so the next death counts against it), while the tasks claimed in the same
    batch wait unstarted and uncharged, as any batch does."""
    from sqlq.delivery import running_delivery
    seen = {}

    @queue.task(context=True)
    def job(tag, task=None):
        delivery = running_delivery()
        if tag == 'recovered':
            seen['claimed'] = queue.storage.claimed_size()
            seen['ready'] = queue.storage.queue_size()
        seen[tag] = (task.attempts, delivery.start_recorded)
        return tag

    # Prepared before the worker starts: a worker that finds it at once, with a run-time
    # estimate of fast tasks, claims it in one batch with the others.
    queue.enqueue_many([job.s('recovered')] + [job.s(i) for i in range(5)])
    recovered = queue.pending()[0]
    with as_owner(queue.storage, DEAD):
        claim = queue.storage.dequeue()  # highest priority, oldest: 'recovered'
    assert queue.deserialize_task(claim.data).id == recovered.id
    assert queue.storage.release_owner(DEAD) == 1
    calls = spy_claims(queue.storage)
    with running(queue, mean_run=1e-6):
        wait_for(lambda: len(seen) == 8, WAIT, 'every job')
    # claimed in one batch with the others, which stay claimed in the buffer meanwhile
    assert calls[0][1] > 1, calls
    assert (seen['claimed'], seen['ready']) == (6, 0)
    assert seen['recovered'] == (2, True)
    assert [seen[i] for i in range(5)] == [(1, False)] * 5  # batch claims: not recorded


# ---------------------------------------------------------------------- storage trouble

def test_storage_errors_make_the_worker_back_off_and_continue(queue, recording_job, caplog):
    caplog.set_level(logging.INFO, logger='sqlq.worker')
    job, ran = recording_job

    storage = queue.storage
    original = storage.dequeue_many
    failures = []

    def flaky(limit):
        if ran and len(failures) < 3:
            # usually inside the commit of the first task's outcome (flush_then), which
            # must then stay pending for the next try
            failures.append(limit)
            raise StorageError('injected: database unreachable')
        return original(limit)

    storage.dequeue_many = flaky
    first = job(1)
    with running(queue):
        assert first.get(blocking=True, timeout=WAIT, preserve=True) == 1
        wait_for(lambda: len(failures) == 3, WAIT, 'the injected failures')
        second = job(2)
        assert second.get(blocking=True, timeout=WAIT) == 2
    assert ran == [1, 2]  # each ran once: nothing lost, nothing repeated
    errors = [r for r in caplog.records if 'storage unavailable' in r.getMessage()]
    assert len(errors) == 1 and errors[0].levelno == logging.ERROR  # once per outage
    assert any('reachable again' in r.getMessage() for r in caplog.records)
    assert queue.pending_count() == 0 and queue.running_count() == 0


@pytest.mark.parametrize('giving_back', ['works', 'fails at first'])
def test_claims_that_could_not_be_buffered_go_back_to_the_queue(queue, recording_job,
                                                                 monkeypatch, giving_back):
    job, ran = recording_job
    original = queue.deliver
    calls, failures = [], []

    def flaky(claim):
        calls.append(claim)
        if len(calls) == 3:  # the third claim of the batch below
            failures.append(claim)  # e.g. the storage failing while burying a bad message
            if giving_back == 'fails at first':  # still unreachable: they go back later
                failures.append(storage_outage(queue.storage, monkeypatch,
                                               ['release_unstarted'], 2))
            raise StorageError('injected while taking a claimed batch')
        return original(claim)

    with running(queue) as worker:
        warm_up(queue, worker)
        ran.clear()
        monkeypatch.setattr(queue, 'deliver', flaky)
        results = queue.enqueue_many([job.s(i) for i in range(12)])
        wait_for(lambda: len(ran) >= 12 and queue.running_count() == 0, WAIT,
                 'every task to run and no claim to remain',
                 lambda: 'ran %s, %d claimed' % (sorted(ran), queue.running_count()))
        assert [r.get(blocking=True, timeout=WAIT) for r in results] == list(range(12))
    assert failures  # the failure happened in the middle of a batch
    if giving_back == 'fails at first':
        assert failures[1] == ['release_unstarted'] * 2
    assert sorted(ran) == list(range(12))  # the claims it left unbuffered ran after all
    assert queue.pending_count() == 0 and queue.running_count() == 0
