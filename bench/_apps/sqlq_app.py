"""A sqlq queue for the benchmarks: ``sqlq consume sqlq_app.queue`` with the database file
named by ``SQLQ_BENCH_DB`` (the bench process builds its own handle with :func:`make`)."""
import os

import _ledger

from sqlq import SqliteQueue


def make(filename):
    queue = SqliteQueue(filename, name='bench')

    @queue.task(name='bench.record')
    def record(tag, enqueued):
        return _ledger.report(tag, enqueued)

    return queue, record


queue = record = noop = sized = prio = urgent = None
if os.environ.get('SQLQ_BENCH_DB'):
    queue, record = make(os.environ['SQLQ_BENCH_DB'])
    noop = _ledger.add_noop(queue)  # bench/compare.py's drain task
    sized, prio, urgent = _ledger.add_scale_tasks(queue)  # bench/scale.py's
