"""Periodic tasks fire exactly once per matching minute, however many consumers run.

The consumer subprocesses and this process share a fake clock (``SQLQ_TEST_FAKE_CLOCK``)
running 60 times faster than real time, so a minute passes in a second; ``-s 0.05`` lets the
scheduler look often. The app's periodic task matches two minutes out of three, and its
validate_datetime records every minute each consumer evaluated into the ledger.
"""
from __future__ import annotations

import collections
import datetime
import signal

import pytest

from sqlq import MemoryQueue, crontab
from sqlq.scheduler import Scheduler
from tests._harness import fake_clock_spec
from tests._helpers import wait_for
from tests.apps import consumer_app
from tests.apps.consumer_app import periodic_minute_matches

# 2030-01-01 00:00:00 UTC, minus a few fake seconds: the first minute boundary comes soon.
FAKE_START = 1893456000.0 - 5
SPEED = 60.0


@pytest.fixture
def fast_app(start_harness):
    return start_harness(consumer_app, clock_spec=fake_clock_spec(FAKE_START, SPEED))


def _stop(*consumers):
    for consumer in consumers:
        consumer.signal(signal.SIGTERM)
    for consumer in consumers:
        assert consumer.wait_exit() == 0


def _evaluations(app):
    """{pid: [(minute datetime, matched)]} from the validate_datetime ledger lines."""
    seen = collections.defaultdict(list)
    for _, pid, _, iso, matched in app.ledger('validate'):
        seen[int(pid)].append((datetime.datetime.fromisoformat(iso), matched == '1'))
    return seen


@pytest.mark.slow
@pytest.mark.subprocess
def test_two_consumers_fire_each_matching_minute_exactly_once(fast_app):
    app = fast_app
    one = app.start('-w', '1', '-k', 'thread', '-s', '0.05', name='one')
    two = app.start('-w', '1', '-k', 'process', '-s', '0.05', name='two')
    wait_for(lambda: len(app.ledger('periodic')) >= 4, timeout=30,
             what='four periodic runs', describe=lambda: one.describe() + two.describe())
    _stop(one, two)

    evaluations = _evaluations(app)
    assert set(evaluations) == {one.pid, two.pid}          # both consumers took part
    for minutes in evaluations.values():
        stamps = [dt for dt, _ in minutes]
        assert len(stamps) == len(set(stamps)), 'a consumer evaluated a minute twice'
        for dt in stamps:
            assert (dt.second, dt.microsecond) == (0, 0), dt   # evaluated on the minute
    matching = {dt for minutes in evaluations.values() for dt, matched in minutes if matched}
    skipped = {dt for minutes in evaluations.values() for dt, matched in minutes
               if not matched}
    assert all(periodic_minute_matches(dt) for dt in matching)
    assert skipped, 'the run should have crossed a non-matching minute'
    # Both consumers evaluated (and competed for) some of the same matching minutes.
    both = {dt for dt, m in evaluations[one.pid] if m} & {dt for dt, m in evaluations[two.pid]
                                                         if m}
    assert both
    # Exactly one task per matching minute: run, or enqueued and not yet run at the stop.
    fired = len(app.ledger('periodic')) + app.queue.pending_count()
    assert app.queue.running_count() == 0
    assert fired == len(matching)


@pytest.mark.slow
@pytest.mark.subprocess
def test_no_periodic_option_keeps_a_consumer_out_of_periodic_scheduling(fast_app):
    app = fast_app
    active = app.start('-w', '1', '-k', 'thread', '-s', '0.05', name='active')
    passive = app.start('-w', '1', '-k', 'thread', '-s', '0.05', '-n', name='passive')
    wait_for(lambda: len(app.ledger('periodic')) >= 2, timeout=30,
             what='two periodic runs', describe=lambda: active.describe() + passive.describe())
    # the passive consumer still runs tasks
    assert app.app.echo('x').get(blocking=True, timeout=20)[0] == 'x'
    _stop(active, passive)
    evaluations = _evaluations(app)
    assert set(evaluations) == {active.pid}
    assert 'periodic off' in passive.log() and 'periodic on' in active.log()


@pytest.mark.slow
@pytest.mark.subprocess
def test_single_consumer_without_periodic_fires_nothing(fast_app):
    app = fast_app
    consumer = app.start('-w', '1', '-k', 'thread', '-s', '0.05', '-n')
    # Let two fake minutes pass (two real seconds), then prove the consumer is alive and
    # working, and that nothing periodic was evaluated or fired.
    start = app.clock()
    wait_for(lambda: app.clock() - start >= 120, timeout=10, what='two fake minutes')
    assert app.app.echo('alive').get(blocking=True, timeout=20)[0] == 'alive'
    _stop(consumer)
    assert app.ledger('validate') == [] and app.ledger('periodic') == []
    assert app.queue.pending_count() == 0


# -- the scheduler itself, with explicit times ----------------------------------------------
def test_scheduler_evaluates_each_minute_once_on_the_minute_across_schedulers():
    now = [1893456000.0 + 17.25]                       # 2030-01-01 00:00:17.25 UTC
    queue = MemoryQueue('sched', clock=lambda: now[0])
    seen = []

    def every_minute(dt):
        seen.append(dt)
        return True

    @queue.periodic_task(every_minute, name='sched.tick')
    def tick():
        return None

    first, second = Scheduler(queue, interval=0.5), Scheduler(queue, interval=0.5)
    for offset in (0, 1.0, 20.0, 42.5):                 # many ticks within one minute
        for scheduler in (first, second):
            scheduler.tick(now[0] + offset)
    assert queue.pending_count() == 1
    assert seen == [datetime.datetime(2030, 1, 1, 0, 0)] * 2   # each scheduler, once
    for scheduler in (first, second):
        scheduler.tick(now[0] + 60)                     # the next minute
    assert queue.pending_count() == 2
    assert seen[2:] == [datetime.datetime(2030, 1, 1, 0, 1)] * 2


def test_scheduler_wait_never_sleeps_past_the_next_minute():
    queue = MemoryQueue('sched')

    @queue.periodic_task(crontab(minute='*'), name='sched.every')
    def every():
        return None

    scheduler = Scheduler(queue, interval=30.0)
    assert scheduler.tick(1893456000.0 + 50.0) == pytest.approx(10.0)
    assert Scheduler(queue, periodic=False, interval=30.0).tick(1893456000.0 + 50.0) == 30.0


def test_scheduler_without_periodic_does_not_evaluate():
    queue = MemoryQueue('sched')
    calls = []

    @queue.periodic_task(lambda dt: calls.append(dt) or True, name='sched.never')
    def never():
        return None

    Scheduler(queue, periodic=False).tick(1893456000.0)
    assert calls == [] and queue.pending_count() == 0


def test_scheduler_moves_a_task_its_lead_before_the_eta():
    """Issue 17, item 4: the move to the ready queue and the wake-up of a worker take about a
    millisecond, so the scheduler makes it Scheduler.lead seconds before the eta (the worker
    then waits out the rest: see the executor's EARLY_WAIT) -- never earlier."""
    queue = MemoryQueue('sched')

    @queue.task(name='sched.later')
    def later():
        return None

    eta = 1893456000.0 + 10.0
    later.schedule(eta=datetime.datetime.fromtimestamp(eta, datetime.timezone.utc))
    scheduler = Scheduler(queue, periodic=False, interval=30.0)
    lead = Scheduler.lead
    assert 0 < lead <= 0.005
    assert scheduler.tick(eta - 1.0) == pytest.approx(1.0 - lead, abs=1e-5)
    assert scheduler.tick(eta - 2 * lead) == pytest.approx(lead, abs=1e-5)
    assert queue.pending_count() == 0 and queue.scheduled_count() == 1
    scheduler.tick(eta - lead)
    assert queue.pending_count() == 1 and queue.scheduled_count() == 0
