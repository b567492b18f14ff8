"""RedisQueue across a crash of its server: redis-server killed (SIGKILL) in the middle of a
drain and started again on the same port and data (append-only file, fsync on every write).

A live consumer must ride it out without leaving anything behind: every task runs, exactly
once, and no claim stays held by its (live) workers, whose claims dead-owner recovery would
never give back. Every wait is bounded; the server and the consumer are stopped at the end.
"""
from __future__ import annotations

import time

import pytest

from tests._harness import Harness
from tests._helpers import wait_for
from tests._redis_server import RedisServer
from tests.apps import consumer_app

pytestmark = [pytest.mark.usefixtures('redis_available'), pytest.mark.slow,
              pytest.mark.subprocess]

ROUNDS = 4           # kills per test
TASKS = 1500         # enqueued at once before each kill: the workers hold claimed batches
OUTAGE = 0.5         # seconds the server stays down once the workers noticed: several back-offs
SETTLE_TIMEOUT = 30  # bound of the wait for every task to run after the restart


@pytest.fixture
def durable_server():
    """A redis-server of its own whose acknowledged writes survive a SIGKILL."""
    server = RedisServer(['--appendonly', 'yes', '--appendfsync', 'always']).start()
    try:
        yield server
    finally:
        server.close()


@pytest.mark.parametrize('worker_type', ['thread', 'process'])
def test_a_server_killed_mid_drain_leaves_no_task_behind(tmp_path, durable_server, worker_type):
    app = Harness(tmp_path, consumer_app, redis_url=durable_server.url)
    try:
        consumer = app.start('-w', '4', '-k', worker_type, '-c', '0.2')
        expected: set[str] = set()
        for round_ in range(ROUNDS):
            tags = ['r%d-%d' % (round_, i) for i in range(TASKS)]
            expected.update(tags)
            ran_before, outages = app.count('echo'), consumer.log().count('storage unavailable')
            app.queue.enqueue_many([app.app.echo.s(tag) for tag in tags])
            wait_for(lambda: app.count('echo') >= ran_before + TASKS // 4,  # noqa: B023
                     SETTLE_TIMEOUT, 'the drain to be under way', consumer.describe)
            durable_server.kill()   # mid-drain: claimed batches, outcomes waiting in groups
            consumer.wait_log('storage unavailable', outages + 1)
            time.sleep(OUTAGE)      # the outage itself (not a synchronisation)
            durable_server.start()

            def settled() -> bool:
                return set(app.keys('echo')) >= expected and app.queue.pending_count() == 0 \
                    and app.queue.running_count() == 0

            def describe() -> str:
                missing = expected - set(app.keys('echo'))
                return 'round %d: %d never ran, %d ready, %d claimed by %s\n%s' % (
                    round_, len(missing), app.queue.pending_count(), app.queue.running_count(),  # noqa: B023
                    app.queue.storage.claim_owners(), consumer.describe())
            wait_for(settled, SETTLE_TIMEOUT, 'every task to run and no claim to remain',
                     describe)
        runs = app.keys('echo')
        assert sorted(runs) == sorted(expected)
        assert {tag: n for tag, n in runs.items() if n > 1} == {}  # none ran twice
        assert consumer.proc.poll() is None                       # it rode out every outage
    finally:
        app.close()
