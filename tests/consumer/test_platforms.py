"""Desktop platforms: process workers started with ``spawn`` (macOS's default, Windows' only
method), an embedded thread consumer that needs neither ``fork`` nor signals, and waits that
fall back to a bounded re-check where ``AF_UNIX`` datagrams are missing -- all exercised on
Linux, the missing pieces taken away."""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys

import pytest

from sqlq.storage.sqlite._wakeup import directories_for
from tests._helpers import wait_for
from tests.apps import lost_app

RESULT_TIMEOUT = 30


@pytest.fixture
def lost(start_harness):
    return start_harness(lost_app)


def _start_method_of(pid):
    """How process ``pid`` was started, judged by its command line."""
    with open('/proc/%d/cmdline' % pid, 'rb') as fh:
        return 'spawn' if b'multiprocessing' in fh.read() else 'fork'


@pytest.mark.subprocess
def test_process_workers_run_with_spawn(lost):
    """``sqlq consume -k process --start-method spawn``: each worker is a fresh interpreter
    that imports the app module to find the queue and its tasks; logging goes where the
    consumer's does."""
    consumer = lost.start('-k', 'process', '-w', '2', '--start-method', 'spawn')
    results = [lost.app.echo('spawned-%d' % i) for i in range(10)]
    values = [r.get(blocking=True, timeout=RESULT_TIMEOUT) for r in results]
    assert [v[0] for v in values] == ['spawned-%d' % i for i in range(10)]
    workers = consumer.worker_pids()
    assert workers and {v[1] for v in values} <= set(workers), consumer.describe()
    assert {_start_method_of(pid) for pid in workers} == {'spawn'}
    consumer.wait_log('executed in', 10)               # the workers' lines reach the log
    consumer.signal(signal.SIGINT)
    assert consumer.wait_exit(30) == 0, consumer.describe()
    assert lost.queue.running_count() == 0


@pytest.mark.subprocess
def test_embedded_process_consumer_with_spawn(lost):
    """``queue.create_consumer(worker_type='process', start_method='spawn')`` in an
    application whose queue lives in an importable module."""
    script = (
        'import sys, time\n'
        'from tests.apps.lost_app import queue\n'
        'consumer = queue.create_consumer(workers=1, worker_type="process", '
        'start_method="spawn")\n'
        'consumer.start()\n'
        'r = queue.app.echo("embedded")\n'
        'print(r.get(blocking=True, timeout=30)[0], flush=True)\n'
        'consumer.stop()\n')
    proc = lost.run_python('embedded', script)
    assert proc.wait_exit(60) == 0, proc.describe()
    assert 'embedded' in proc.output(), proc.describe()


def test_thread_consumer_needs_neither_fork_nor_signals(make_queue, monkeypatch):
    """Embedded thread workers (a desktop app's): no start method, no fork, no signal
    handler is asked for."""
    def refusing(original):
        def refused(*args, **kwargs):
            if sys._getframe(1).f_globals.get('__name__', '').startswith('sqlq'):
                raise AssertionError('an embedded thread consumer must not call this')
            return original(*args, **kwargs)  # pytest's own use
        return refused

    queue = make_queue()
    ran = []

    @queue.task()
    def job(i):
        ran.append(i)
        return i

    monkeypatch.setattr(multiprocessing, 'get_context', refusing(multiprocessing.get_context))
    monkeypatch.setattr(signal, 'signal', refusing(signal.signal))
    monkeypatch.delattr(os, 'fork', raising=False)
    consumer = queue.create_consumer(workers=2, worker_type='thread')
    consumer.start()
    try:
        results = [job(i) for i in range(20)]
        assert sorted(r.get(blocking=True, timeout=RESULT_TIMEOUT) for r in results) \
            == list(range(20))
    finally:
        consumer.stop()
    assert sorted(ran) == list(range(20))


@pytest.mark.subprocess
@pytest.mark.parametrize('kind', ['thread', 'process'])
def test_consumers_work_with_the_wakeup_channel_off(lost, kind, monkeypatch):
    """``SQLQ_NO_WAKEUP=1`` (what a platform without AF_UNIX datagrams gets): no socket
    directory is made, idle workers re-check the database on a bounded poll, tasks run."""
    monkeypatch.setenv('SQLQ_NO_WAKEUP', '1')   # this process's waits (Result.get) too
    lost.env['SQLQ_NO_WAKEUP'] = '1'
    consumer = lost.start('-k', kind, '-w', '2')
    results = [lost.app.echo('polled-%d' % i) for i in range(10)]
    assert [r.get(blocking=True, timeout=RESULT_TIMEOUT)[0] for r in results] == \
        ['polled-%d' % i for i in range(10)]
    # a task enqueued while every worker idles is picked up as well
    wait_for(lambda: lost.queue.running_count() == 0, what='the workers to go idle')
    assert lost.app.echo('late').get(blocking=True, timeout=RESULT_TIMEOUT)[0] == 'late'
    made = [d for d in directories_for(lost.db) if os.path.exists(d)]
    assert made == [], made
    assert consumer.proc.poll() is None, consumer.describe()
