"""Real ``sqlq consume`` processes (``python -m sqlq consume tests.apps.consumer_app.queue``,
started by ``tests/_harness.py``) on one SQLite file, driven from the test process through the
public API.

Every wait is bounded (``Result.get(blocking=True, timeout=...)`` or polling a condition with
a deadline); every consumer is killed in the harness's ``close``.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

from sqlq import TaskException
from sqlq._time import to_timestamp
from sqlq.recovery import HEARTBEAT_INTERVAL
from tests._harness import DB_ENV
from tests._helpers import ROOT_DIR, wait_for
from tests.apps import consumer_app

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

RESULT_TIMEOUT = 20


@pytest.fixture
def app(start_harness):
    return start_harness(consumer_app)


def run_cli(tmp_path, *args, timeout=30):
    env = dict(os.environ, PYTHONPATH=ROOT_DIR)
    env.pop(DB_ENV, None)
    return subprocess.run([sys.executable, '-m', 'sqlq'] + list(args), cwd=str(tmp_path),
                          env=env, capture_output=True, text=True, timeout=timeout)


# -- tasks from another process ----------------------------------------------------------------
@pytest.mark.parametrize('worker_type', ['thread', 'process', 'asyncio'])
def test_tasks_enqueued_by_another_process_complete(app, worker_type):
    consumer = app.start('-w', '2', '-k', worker_type, '-c', '0.2')
    results = app.app.echo.map([(i,) for i in range(20)])
    values = results.get(blocking=True, timeout=RESULT_TIMEOUT)
    assert [tag for tag, _ in values] == list(range(20))
    pids = {pid for _, pid in values}
    if worker_type == 'process':
        assert consumer.pid not in pids
    else:
        assert pids == {consumer.pid}
    assert sorted(int(entry[3]) for entry in app.ledger('echo')) == list(range(20))   # once each
    assert app.queue.pending_count() == 0 and app.queue.running_count() == 0


def test_log_lists_tasks_and_each_task_start_and_duration(app):
    consumer = app.start('-w', '1', '-k', 'thread')
    log = consumer.log()
    listing = log.split('The following tasks are available', 1)[1]
    for name in ('app.echo', 'app.block', 'app.die', 'app.sleepy', 'app.periodic'):
        assert '+ %s' % name in listing
    result = app.app.echo('logged')
    assert result.get(blocking=True, timeout=RESULT_TIMEOUT) == ['logged', consumer.pid]
    consumer.wait_log('%s executed in' % result.id)
    log = consumer.log()
    assert re.search(r'Executing app\.echo: %s' % result.id, log)
    assert re.search(r'app\.echo: %s executed in \d+\.\d+s' % result.id, log)


# -- worker health ------------------------------------------------------------------------------
def test_dead_process_worker_is_replaced_and_later_tasks_complete(app):
    consumer = app.start('-w', '1', '-k', 'process', '-c', '0.2')
    died = app.app.die(3)
    wait_for(lambda: app.ledger('die'), what='the dying task to run', describe=consumer.describe)
    consumer.wait_log('died (exit code 3)')
    later = app.app.echo('after death')
    tag, pid = later.get(blocking=True, timeout=RESULT_TIMEOUT)
    assert tag == 'after death'
    assert pid != int(app.ledger('die')[0][1])           # a new worker process ran it
    # The task whose worker died is not lost: the consumer's upkeep (every HEARTBEAT_INTERVAL)
    # gives the dead worker's claim back (sqlq.recovery) and the task runs again, killing a
    # worker each time, until its third death quarantines it: a dead letter, never run again.
    [letter] = wait_for(app.queue.dead_letters, timeout=RESULT_TIMEOUT + 4 * HEARTBEAT_INTERVAL,
                        what='the dying task to be quarantined', describe=consumer.describe)
    assert 'died 3 times' in letter.reason
    assert app.queue.deserialize_task(letter.data).id == died.id
    assert len(app.ledger('die')) == 3
    assert len({entry[1] for entry in app.ledger('die')}) == 3  # each run in a new worker process
    assert app.queue.running_count() == 0
    assert app.queue.pending_count() == 0
    assert not died.is_ready()


def test_process_workers_of_a_killed_consumer_stop_instead_of_lingering(app):
    consumer = app.start('-w', '2', '-k', 'process')
    workers = wait_for(lambda: app.worker_pids_of(consumer.pid) if len(
        app.worker_pids_of(consumer.pid)) == 2 else None, what='two worker processes')
    consumer.proc.kill()
    consumer.proc.wait(10)

    def alive(pid):
        try:
            with open('/proc/%d/stat' % pid) as fh:
                return fh.read().rsplit(')', 1)[1].split()[0] != 'Z'
        except OSError:
            return False
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=10,
             what='orphaned workers to exit')


@pytest.mark.parametrize('extra', [(), ('-C',)], ids=['health-check', 'no-health-check'])
@pytest.mark.parametrize('worker_type', ['thread', 'process'])
def test_max_tasks_recycles_workers_and_all_tasks_complete(app, worker_type, extra):
    consumer = app.start('-w', '1', '-k', worker_type, '-M', '2', '-c', '0.2', *extra)
    values = app.app.echo.map([(i,) for i in range(7)]).get(blocking=True,
                                                            timeout=RESULT_TIMEOUT)
    assert [tag for tag, _ in values] == list(range(7))
    assert consumer.log().count('(max-tasks): recycling') >= 3
    if worker_type == 'process':
        # 7 tasks, 2 per worker process: at least 4 different processes ran them
        assert len({pid for _, pid in values}) >= 4


# -- shutdown -----------------------------------------------------------------------------------
@pytest.mark.parametrize('worker_type', ['thread', 'process', 'asyncio'])
@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT], ids=['SIGTERM', 'SIGINT'])
def test_graceful_shutdown_finishes_running_task_and_starts_no_new_one(app, signum,
                                                                       worker_type):
    consumer = app.start('-w', '1', '-k', worker_type)
    running = app.app.block('A', app.release_path('A'))
    queued = app.app.echo('B')
    wait_for(lambda: app.ledger('start'), what='task A to start', describe=consumer.describe)
    consumer.signal(signum)
    consumer.wait_log('received %s: stopping gracefully' % signal.Signals(signum).name)
    app.release('A')
    assert running.get(blocking=True, timeout=RESULT_TIMEOUT) == 'released A'
    assert consumer.wait_exit() == 0
    assert 'consumer stopped' in consumer.log()
    assert app.ledger('echo') == []                      # B never started
    assert app.queue.pending_count() == 1
    assert app.queue.running_count() == 0
    assert not queued.is_ready()


@pytest.mark.parametrize('worker_type', ['thread', 'process', 'asyncio'])
@pytest.mark.parametrize('signals, options', [
    ((signal.SIGTERM, signal.SIGTERM), ()),
    ((signal.SIGINT, signal.SIGINT), ()),
    ((signal.SIGINT, signal.SIGTERM), ('-g', 'SIGINT')),
    ((signal.SIGTERM,), ('-g', 'SIGINT')),
], ids=['TERM-TERM', 'INT-INT', 'g-INT:INT-TERM', 'g-INT:TERM'])
def test_immediate_shutdown_returns_running_task_to_queue(app, worker_type, signals, options):
    consumer = app.start('-w', '1', '-k', worker_type, '-t', '5', *options)
    long = app.app.block('long', app.release_path('long'))          # never released
    wait_for(lambda: app.ledger('start'), what='the long task to start',
             describe=consumer.describe)
    for i, signum in enumerate(signals):
        consumer.signal(signum)
        consumer.wait_log('received %s' % signal.Signals(signum).name,
                          count=1 + signals[:i].count(signum))
    assert consumer.wait_exit(timeout=10) == 0           # well before the task's 30 s
    assert 'stopping at once' in consumer.log()
    assert app.ledger('finish') == [] and app.ledger('gave-up') == []
    assert app.queue.pending_count() == 1                # back in the queue, not lost
    assert app.queue.running_count() == 0
    assert not long.is_ready()
    interrupted = [entry for entry in app.ledger('signal') if entry[3] == 'interrupted']
    assert [(entry[4], entry[5]) for entry in interrupted] == [('app.block', long.id)]


def test_shutdown_timeout_interrupts_a_task_that_outlives_it(app):
    consumer = app.start('-w', '1', '-k', 'thread', '-t', '0.3')
    long = app.app.block('long', app.release_path('long'))
    wait_for(lambda: app.ledger('start'), what='the long task to start',
             describe=consumer.describe)
    consumer.signal(signal.SIGTERM)
    assert consumer.wait_exit(timeout=10) == 0
    assert app.queue.pending_count() == 1
    assert [entry[5] for entry in app.ledger('signal') if entry[3] == 'interrupted'] == [long.id]


@pytest.mark.parametrize('worker_type', ['thread', 'process'])
def test_sighup_restarts_in_place_and_keeps_consuming(app, worker_type):
    consumer = app.start('-w', '1', '-k', worker_type)
    first = app.app.echo('before')
    assert first.get(blocking=True, timeout=RESULT_TIMEOUT)[0] == 'before'
    consumer.signal(signal.SIGHUP)
    consumer.wait_log('restarting (SIGHUP)')
    consumer.wait_ready(count=2)                         # the re-executed consumer is up
    assert consumer.proc.poll() is None
    second = app.app.echo('after')
    tag, pid = second.get(blocking=True, timeout=RESULT_TIMEOUT)
    assert tag == 'after'
    if worker_type == 'thread':
        assert pid == consumer.pid                       # same process, exec'd in place
    consumer.signal(signal.SIGTERM)
    assert consumer.wait_exit() == 0


# -- timeouts -----------------------------------------------------------------------------------
def test_process_worker_task_timeout_fails_with_tasktimeout_after_one_retry(app):
    consumer = app.start('-w', '1', '-k', 'process')
    result = app.app.sleepy()                            # timeout=0.5, retries=1, sleeps 30 s
    with pytest.raises(TaskException) as info:
        result.get(blocking=True, timeout=RESULT_TIMEOUT)
    assert 'TaskTimeout' in info.value.metadata['error']
    assert len(app.ledger('sleepy')) == 2                # the first attempt and one retry
    signals = [entry[3] for entry in app.ledger('signal') if entry[5] == result.id]
    assert signals.count('timeout') == 2 and signals.count('retrying') == 1
    # the same worker process keeps serving
    tag, pid = app.app.echo('next').get(blocking=True, timeout=RESULT_TIMEOUT)
    assert tag == 'next'
    assert {int(entry[1]) for entry in app.ledger('sleepy')} == {pid}
    assert 'died' not in consumer.log()


def test_asyncio_worker_cancels_a_coroutine_at_its_timeout_and_retries_it(app):
    """``-k asyncio``: the coroutine is cancelled at its timeout (its CancelledError recorded)
    while other tasks go on running on the loop; TIMEOUT and RETRYING signals, one retry."""
    consumer = app.start('-w', '4', '-k', 'asyncio')
    result = app.app.asleepy()                           # timeout=0.5, retries=1, sleeps 30 s
    meanwhile = app.app.aecho('meanwhile')
    assert meanwhile.get(blocking=True, timeout=RESULT_TIMEOUT)[0] == 'meanwhile'
    with pytest.raises(TaskException) as info:
        result.get(blocking=True, timeout=RESULT_TIMEOUT)
    assert 'TaskTimeout' in info.value.metadata['error']
    assert len(app.ledger('asleepy')) == 2 and len(app.ledger('asleepy-cancelled')) == 2
    signals = [entry[3] for entry in app.ledger('signal') if entry[5] == result.id]
    assert signals.count('timeout') == 2 and signals.count('retrying') == 1
    warning = [line for line in consumer.log().splitlines() if 'cooperatively' in line]
    assert warning and 'app.sleepy' in warning[0]        # a plain task's timeout: cooperative
    assert 'app.asleepy' not in warning[0]               # an async task's: real


def test_extra_locks_are_flushed_at_start(app):
    lock = app.queue.lock_task('stale-lock')
    assert lock.acquire()
    consumer = app.start('-w', '1', '-L', 'stale-lock,other')
    assert 'flushed locks: stale-lock' in consumer.log()
    assert not app.queue.is_locked('stale-lock')


# -- scheduled tasks ----------------------------------------------------------------------------
def test_delayed_and_eta_tasks_run_after_their_eta(app):
    import datetime
    app.start('-w', '2', '-k', 'thread', '-s', '0.2')
    delayed = app.app.started_at.schedule(delay=0.5)
    at = app.app.started_at.schedule(
        eta=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=0.7))
    for result in (delayed, at):
        eta = to_timestamp(result.task.eta, app.queue.utc)
        started = result.get(blocking=True, timeout=RESULT_TIMEOUT)
        assert started >= eta, (started, eta)
    assert app.queue.scheduled_count() == 0


# -- command line -------------------------------------------------------------------------------
def test_version(tmp_path):
    import sqlq
    done = run_cli(tmp_path, '--version')
    assert done.returncode == 0
    version, implementation = done.stdout.strip().splitlines()
    assert version == 'sqlq %s' % sqlq.__version__
    assert implementation.startswith('fast path: ')


def test_consume_help_lists_every_option(tmp_path):
    done = run_cli(tmp_path, 'consume', '--help')
    assert done.returncode == 0
    for letter in 'wklvqnscCfLMtg':
        assert re.search(r'(^|\s)-%s[\s,]' % letter, done.stdout), letter


@pytest.mark.parametrize('target, fragment', [
    ('no_such_module_xyz.queue', "cannot import module 'no_such_module_xyz'"),
    ('tests.apps.consumer_app.missing', "has no attribute 'missing'"),
    ('tests.apps.consumer_app.not_a_queue', 'not a sqlq queue'),
    ('noattribute', 'expected module.attribute'),
])
def test_bad_queue_path_is_one_clear_error_line(tmp_path, target, fragment):
    done = run_cli(tmp_path, 'consume', target)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith('sqlq: error: ') and fragment in lines[0], lines[0]


def test_greenlet_without_gevent_is_a_clear_error(tmp_path):
    try:
        import gevent  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip('gevent is installed')
    done = run_cli(tmp_path, 'consume', 'tests.apps.consumer_app.queue', '-k', 'greenlet')
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and 'sqlq[gevent]' in lines[0], done.stderr
