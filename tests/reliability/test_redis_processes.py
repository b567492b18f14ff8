"""RedisQueue with real processes: ``sqlq consume`` consumers fed by another process, a Redis
restart in the middle of a drain, and the inspection CLI.

Every wait is bounded; every consumer and redis-server is stopped at the end of its test.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sqlq import StorageError, StorageUnavailableError
from tests._harness import DB_ENV, Harness
from tests._helpers import ROOT_DIR, wait_for
from tests._redis_server import RedisServer
from tests.apps import consumer_app

pytestmark = [pytest.mark.usefixtures('redis_available'), pytest.mark.slow,
              pytest.mark.subprocess]

RESULT_TIMEOUT = 30


@pytest.fixture
def app(start_harness, redis_url):
    return start_harness(consumer_app, redis_url=redis_url)


def test_process_consumer_drains_tasks_enqueued_by_another_process(app, tmp_path):
    consumer = app.start('-w', '2', '-k', 'process', '-c', '0.2')
    # The producer is a separate process too: it only shares the Redis URL.
    script = ('from tests.apps import consumer_app as a\n'
              'a.queue.enqueue_many([a.queue.app.echo.s(i) for i in range(40)])\n')
    subprocess.run([sys.executable, '-c', script], cwd=str(tmp_path), env=app.env, check=True,
                   timeout=60)
    wait_for(lambda: len(app.ledger('echo')) >= 40, RESULT_TIMEOUT, 'the 40 tasks to run',
             consumer.describe)
    tags = sorted(int(line[3]) for line in app.ledger('echo'))
    assert tags == list(range(40))                                   # each exactly once
    assert {int(line[1]) for line in app.ledger('echo')} - {consumer.pid}  # in worker processes
    wait_for(lambda: app.queue.pending_count() == 0 and app.queue.running_count() == 0,
             RESULT_TIMEOUT, 'the queue to empty', consumer.describe)


@pytest.fixture
def durable_server():
    """A redis-server of its own that keeps its data across a restart (append-only file,
    fsync on every write), so "nothing lost" can be checked task by task."""
    server = RedisServer(['--appendonly', 'yes', '--appendfsync', 'always']).start()
    try:
        yield server
    finally:
        server.close()


def test_redis_restart_mid_drain_loses_nothing(tmp_path, durable_server):
    """What "loses nothing" means here: the server keeps every acknowledged write (fsync'd
    append-only file), the consumer survives the outage and reconnects, a producer gets a
    clear StorageUnavailableError while the server is down, and every task enqueued before
    or after the restart runs exactly once."""
    app = Harness(tmp_path, consumer_app, redis_url=durable_server.url)
    try:
        consumer = app.start('-w', '2', '-k', 'process', '-c', '0.2')
        # Both workers busy on a blocking task; more tasks wait behind them: mid-drain.
        blockers = [app.app.block('b%d' % i, app.release_path('go')) for i in range(2)]
        before = app.queue.enqueue_many([app.app.echo.s('before-%d' % i) for i in range(20)])
        wait_for(lambda: len(app.ledger('start')) == 2, RESULT_TIMEOUT,
                 'both workers to start a blocking task', consumer.describe)

        durable_server.stop()
        # A producer gets a clear error naming the server while it is down.
        with pytest.raises(StorageUnavailableError) as excinfo:
            app.app.echo('while-down')
        assert '127.0.0.1:%d' % durable_server.port in str(excinfo.value)
        assert isinstance(excinfo.value, StorageError)
        durable_server.start()

        app.release('go')
        after = app.queue.enqueue_many([app.app.echo.s('after-%d' % i) for i in range(20)])
        for result in blockers:
            assert result.get(blocking=True, timeout=RESULT_TIMEOUT).startswith('released')
        for group in (before, after):
            group.get(blocking=True, timeout=RESULT_TIMEOUT)
        ran = sorted(line[3] for line in app.ledger('echo'))
        assert ran == sorted(['before-%d' % i for i in range(20)] +
                             ['after-%d' % i for i in range(20)])
        assert consumer.proc.poll() is None        # the consumer rode out the outage
        wait_for(lambda: app.queue.pending_count() == 0 and app.queue.running_count() == 0,
                 RESULT_TIMEOUT, 'the queue to empty', consumer.describe)
    finally:
        app.close()


def _cli(app, *args):
    env = dict(app.env, PYTHONPATH=ROOT_DIR)
    env.pop(DB_ENV, None)
    done = subprocess.run([sys.executable, '-m', 'sqlq'] + list(args), cwd=app.dir, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_inspection_cli_on_a_redis_queue(app):
    q = app.queue
    app.app.echo('pending-1')
    app.app.echo.schedule(('later',), delay=3600)
    claimed = q.dequeue()                     # running, held by this process
    app.app.echo('pending-2')
    q.storage.add_dead_letter(b'garbage', 'undecodable')

    stats = json.loads(_cli(app, 'stats', 'tests.apps.consumer_app.queue', '--json'))
    assert (stats['pending'], stats['scheduled'], stats['running'], stats['failed']) == \
        (1, 1, 1, 1)
    assert stats['server'] == q.storage.address
    assert stats['running_owners'] == {q.storage.owner_id: 1}
    table = _cli(app, 'stats', 'tests.apps.consumer_app.queue')
    assert 'pending' in table and 'database size' in table

    pending = json.loads(_cli(app, 'pending', 'tests.apps.consumer_app.queue', '--json'))
    assert [t['args'] for t in pending] == [['pending-2']]
    running = json.loads(_cli(app, 'running', 'tests.apps.consumer_app.queue', '--json'))
    assert [t['id'] for t in running] == [claimed.id]
    failed = json.loads(_cli(app, 'failed', 'tests.apps.consumer_app.queue', '--json'))
    assert len(failed) == 1 and 'undecodable' in failed[0]['reason']
    _cli(app, 'requeue', 'tests.apps.consumer_app.queue', '--all')
    assert q.dead_letter_count() == 0 and q.pending_count() == 2
