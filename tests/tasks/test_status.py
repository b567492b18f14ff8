"""Task status by id and the history of finished runs, on every backend: each state a task
goes through, the runs recorded with their outcomes, the per-name figures, pruning, and the
history riding on the outcome's own transaction."""
from __future__ import annotations

import datetime

import pytest

from sqlq import CancelExecution, MemoryQueue
from sqlq.exceptions import ConfigurationError
from sqlq.outcomes import OutcomeGroup
from tests._clock import FakeClock
from tests._helpers import drain


@pytest.fixture
def clock():
    return FakeClock(1_800_000_000.0)


@pytest.fixture
def q(make_queue, clock):
    return make_queue(clock=clock)


def test_pending_running_succeeded(q, clock):
    @q.task()
    def add(a, b):
        return a + b

    result = add(1, 2)
    status = q.status(result.id)
    assert (status.state, status.location, status.name) == ('pending', 'ready', add.name)
    assert status.enqueued_at == clock() and status.task.args == (1, 2)
    task = q.dequeue()
    clock.advance(5)
    running = q.status(result)  # a Result works as well as its id
    assert (running.state, running.owner) == ('running', q.storage.owner_id)
    assert running.started_at == clock() - 5 and running.attempts == 1
    q.execute(task)
    done = q.status(result.id)
    assert done.state == 'succeeded' and done.location is None and done.result == 3
    assert done.finished_at == clock() and done.started_at <= done.finished_at
    assert done.enqueued_at == clock() - 5 and done.owner == q.storage.owner_id
    (run,) = done.runs
    assert run.outcome == 'succeeded' and run.duration is not None and run.duration >= 0


def test_scheduled_then_revoked(q, clock):
    @q.task()
    def later():
        return 1

    result = later.schedule(delay=60)
    status = q.status(result.id)
    assert status.state == 'scheduled' and status.eta == clock() + 60
    q.revoke_by_id(result.id)
    assert q.status(result.id).state == 'revoked'
    assert q.status(result.id).location == 'scheduled'
    clock.advance(61)
    q.enqueue_due()
    assert q.status(result.id).location == 'ready'
    drain(q)
    skipped = q.status(result.id)
    assert skipped.state == 'revoked' and skipped.runs[0].outcome == 'revoked'
    assert skipped.runs[0].duration is None


def test_retried_then_failed_for_good_is_failed_with_its_dead_letter(q):
    @q.task(retries=1)
    def boom():
        raise ValueError('bad input')

    result = boom()
    drain(q)
    status = q.status(result.id)
    assert status.state == 'failed' and status.location == 'dead'
    assert status.dead_letter_id == q.failed()[0].id
    assert 'ValueError' in status.error and 'Traceback' in status.error
    assert [run.outcome for run in status.runs] == ['failed', 'retried']
    assert status.runs[0].error == "ValueError('bad input')"
    q.purge_failed()
    gone = q.status(result.id)
    assert gone.state == 'failed' and gone.location is None and 'ValueError' in gone.error


def test_quarantined_message_is_dead(q):
    @q.task()
    def work():
        return 1

    result = work()
    claim = q.storage.dequeue()
    q.storage.bury(claim.receipt, 'quarantined: its worker died 3 times')
    status = q.status(result.id)
    assert status.state == 'dead' and status.error.startswith('quarantined')
    assert status.name == work.name  # decoded from the dead letter


def test_expired_and_canceled(q, clock):
    @q.task(expires=10)
    def short_lived():
        return 1

    @q.task()
    def vetoed():
        return 1

    @q.pre_execute()
    def veto(task):
        if task.name == vetoed.name:
            raise CancelExecution()

    @q.task()
    def gives_up():
        raise CancelExecution()  # from the task itself: no failure, no dead letter (huey)

    old, no, quit = short_lived(), vetoed(), gives_up()
    clock.advance(11)
    drain(q)
    assert q.status(old.id).state == 'expired'
    assert q.status(no.id).state == 'canceled'
    assert q.status(quit.id).state == 'canceled' and q.dead_letter_count() == 0
    assert [e.outcome for e in q.history(task_id=quit.id)] == ['canceled']


def test_unknown_id(q):
    status = q.status('no-such-task')
    assert status.state == 'unknown' and status.runs == [] and status.name is None


def test_without_history_the_result_still_tells(make_queue):
    q = make_queue(history=False)

    @q.task()
    def add(a, b):
        return a + b

    @q.task()
    def boom():
        raise KeyError('x')

    ok, bad = add(1, 2), boom()
    drain(q)
    assert q.history() == [] and q.task_stats() == []
    assert q.status(ok.id).state == 'succeeded'
    assert q.status(bad.id).state == 'dead'  # in the dead letters; no run recorded
    q.purge_failed()
    assert q.status(bad.id).state == 'failed'  # its stored error tells


def test_history_listing_and_figures(q, clock):
    @q.task()
    def ok(i):
        return i

    @q.task()
    def fails():
        raise RuntimeError('no')

    for i in range(3):
        ok(i)
    fails()
    drain(q)
    entries = q.history()
    assert [e.name for e in entries] == [fails.name] + [ok.name] * 3
    assert [e.name for e in q.history(limit=2)] == [fails.name, ok.name]
    assert len(q.history(before=entries[1].id)) == 2
    assert [e.outcome for e in q.history(name=ok.name)] == ['succeeded'] * 3
    assert [e.name for e in q.history(outcome='failed')] == [fails.name]
    figures = {f.name: f for f in q.task_stats()}
    assert figures[ok.name].runs == 3 and figures[ok.name].failures == 0
    assert figures[fails.name].failures == 1
    assert figures[ok.name].p50 is not None and figures[ok.name].p95 >= figures[ok.name].p50
    minutes = q.throughput(window=600)
    assert len(minutes) == 10 and minutes[-1].runs == 4 and minutes[-1].failures == 1
    assert sum(m.runs for m in minutes[:-1]) == 0
    clock.advance(3660)
    assert q.task_stats() == []  # out of the window (counted by the minute)
    assert {f.name for f in q.task_stats(window=None)} == {ok.name, fails.name}


def test_maintenance_prunes_by_ttl_and_count(make_queue, clock):
    q = make_queue(clock=clock, history_ttl=100, history_max=2)

    @q.task()
    def ok(i):
        return i

    for i in range(4):
        ok(i)
    drain(q)
    q.maintenance()
    assert len(q.history()) == 2  # history_max
    clock.advance(101)
    assert q.maintenance()['history_pruned'] == 2  # history_ttl
    assert q.history() == []
    (figures,) = q.task_stats(window=None)
    assert figures.runs == 4  # all-time sums outlive the entries


@pytest.mark.parametrize('options', [{'history': 'yes'}, {'history_ttl': 0},
                                     {'history_max': -1}, {'history_ttl': True}])
def test_bad_history_options(options):
    with pytest.raises(ConfigurationError):
        MemoryQueue(**options)


def test_immediate_mode_records_history():
    q = MemoryQueue(immediate=True)

    @q.task()
    def add(a, b):
        return a + b

    result = add(2, 3)
    assert q.status(result.id).state == 'succeeded'
    assert q.history()[0].claimed_at is None


def test_worker_group_commit_records_every_run(q):
    @q.task()
    def ok(i):
        return i

    results = [ok(i) for i in range(10)]
    group = OutcomeGroup(q.storage, max_size=100, max_delay=60)
    with q.grouping_outcomes(group):
        for claim in q.storage.dequeue_many(10):
            q.execute(q.deliver(claim))
        assert q.history() == []  # not committed yet
        group.flush()
    assert sorted(e.key for e in q.history()) == sorted(r.id for r in results)
    assert all(e.owner == q.storage.owner_id for e in q.history())


@pytest.mark.parametrize('backend', ['sqlite'], indirect=True)
def test_history_takes_no_commit_of_its_own(make_queue, monkeypatch):
    """The same work commits as often with the history as without it: the run's entry is
    written in the transaction that records its outcome."""
    commits = []

    def count(queue):
        original = type(queue.storage)._commit

        def counting(self, conn, depth=0):
            if depth == 0:
                commits.append(1)
            return original(self, conn, depth)

        monkeypatch.setattr(type(queue.storage), '_commit', counting)

    def run(history):
        q = make_queue('h%s' % history, history=history)

        @q.task(retries=1)
        def work(i):
            if i % 3 == 0:
                raise ValueError(i)
            return i

        for i in range(9):
            work(i)
        count(q)
        del commits[:]
        drain(q)
        group = OutcomeGroup(q.storage, max_size=100, max_delay=60)
        for i in range(5):
            work(i + 1)
        with q.grouping_outcomes(group):
            for claim in q.storage.dequeue_many(5):
                q.execute(q.deliver(claim))
            group.flush()
        monkeypatch.undo()
        return len(commits), len(q.history(limit=None))

    with_history, without = run(True), run(False)
    assert with_history[0] == without[0]
    assert with_history[1] == 9 + 3 + 5 and without[1] == 0


def test_status_of_a_pipeline_step_before_it_is_enqueued(q):
    @q.task()
    def add(a, b):
        return a + b

    pipeline = add.s(1, 2).then(add, 3)
    results = q.enqueue(pipeline).results  # ResultGroup[i] waits for the value, as huey's
    assert q.status(results[1].id).state == 'unknown'
    drain(q)
    assert [q.status(r.id).state for r in results] == ['succeeded', 'succeeded']


def test_status_on_a_storage_that_does_not_track(make_queue, monkeypatch, clock):
    """The fallback built on the core: the listings are searched."""
    q = make_queue(clock=clock)
    storage_class = type(q.storage)
    monkeypatch.setattr(storage_class, 'tracks_tasks', False)

    @q.task()
    def add(a, b):
        return a + b

    waiting = add.schedule((1, 2), eta=datetime.datetime.fromtimestamp(clock() + 30))
    ready, running = add(1, 2), add(3, 4)
    q.storage.dequeue()  # claims `ready` (FIFO)
    assert q.status(ready.id).state == 'running'
    assert q.status(running.id).state == 'pending'
    assert q.status(waiting.id).state == 'scheduled'
    assert q.status('nope').state == 'unknown'
