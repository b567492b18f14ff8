"""Several processes enqueue through the API and several dequeue+execute, on ONE SQLite file.

Every task must be executed exactly once (worker ledgers) and every result must be stored.
"""
from __future__ import annotations

import collections
import multiprocessing

import pytest

from tests.apps import mp_tasks

# Processes share one SQLite file; the fast-path implementation is the default one (the
# parent's choice is passed to its children).
pytestmark = [pytest.mark.parametrize('backend', ['sqlite'], indirect=True), pytest.mark.slow,
              pytest.mark.subprocess]

PRODUCERS = 3
WORKERS = 3
PER_PRODUCER = 300
JOIN_TIMEOUT = 120


@pytest.fixture
def sqlite_only(backend):
    if backend != 'sqlite':
        pytest.skip('multi-process test needs the shared SQLite file')


def test_concurrent_producers_and_workers_execute_each_task_once(sqlite_only, fastpath,
                                                                 tmp_path):
    ctx = multiprocessing.get_context('fork')
    path = str(tmp_path / 'mp.db')
    ledger_dir = tmp_path / 'ledgers'
    ledger_dir.mkdir()

    # create the schema once before the race
    q, _ = mp_tasks.build(path)
    q.close()

    start = ctx.Event()
    producers_done = ctx.Event()
    idle = ctx.Event()                               # never set: used as a bounded sleep
    ids_out = ctx.Queue()
    producers = [ctx.Process(target=mp_tasks.produce,
                             args=(path, fastpath, 'p%d' % i, PER_PRODUCER, start, ids_out))
                 for i in range(PRODUCERS)]
    workers = [ctx.Process(target=mp_tasks.work,
                           args=(path, fastpath, str(ledger_dir), start, producers_done, idle))
               for _ in range(WORKERS)]
    procs = producers + workers
    for p in procs:
        p.start()
    try:
        start.set()
        enqueued = {}
        for _ in range(PRODUCERS):
            name, ids = ids_out.get(timeout=JOIN_TIMEOUT)
            enqueued[name] = ids
        for p in producers:
            p.join(JOIN_TIMEOUT)
            assert p.exitcode == 0, 'producer failed: exit code %r' % p.exitcode
        producers_done.set()
        for p in workers:
            p.join(JOIN_TIMEOUT)
            assert p.exitcode == 0, 'worker failed or hung: exit code %r' % p.exitcode
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join(10)

    # every producer enqueued all its tasks, with distinct ids
    all_ids = [i for ids in enqueued.values() for i in ids]
    assert sorted(len(ids) for ids in enqueued.values()) == [PER_PRODUCER] * PRODUCERS
    assert len(set(all_ids)) == PRODUCERS * PER_PRODUCER

    # every task executed exactly once across all workers
    executions = collections.Counter()
    for ledger in ledger_dir.iterdir():
        for line in ledger.read_text().splitlines():
            executions[line] += 1
    expected = {'p%d:%d' % (p, s) for p in range(PRODUCERS) for s in range(PER_PRODUCER)}
    assert set(executions) == expected, 'lost: %d' % len(expected - set(executions))
    duplicates = {k: v for k, v in executions.items() if v != 1}
    assert not duplicates, 'executed more than once: %r' % list(duplicates.items())[:5]

    # every result is stored and the queue is empty
    queue, _ = mp_tasks.build(path)
    try:
        assert queue.pending_count() == 0
        assert queue.result_count() == PRODUCERS * PER_PRODUCER
        results = {queue.result(i) for i in all_ids}
        assert results == {('p%d' % p, s) for p in range(PRODUCERS)
                           for s in range(PER_PRODUCER)}
    finally:
        queue.close()
