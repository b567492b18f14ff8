"""A sqlq queue with plain and ``async def`` versions of the benchmark tasks, for
bench/asyncio_bench.py: ``sqlq consume sqlq_aio_app.queue -k asyncio`` on the database file
named by ``SQLQ_BENCH_DB`` (the bench process builds its own handle with :func:`make`)."""
import os

import _ledger

from sqlq import SqliteQueue


def make(filename):
    queue = SqliteQueue(filename, name='bench')

    @queue.task(name='bench.record')
    def record(tag, enqueued):
        return _ledger.report(tag, enqueued)

    @queue.task(name='bench.arecord')
    async def arecord(tag, enqueued):
        return _ledger.report(tag, enqueued)

    @queue.task(name='bench.noop')
    def noop(i):
        _ledger.report_first()
        return i

    @queue.task(name='bench.anoop')
    async def anoop(i):
        _ledger.report_first()
        return i

    return queue, {'record': record, 'arecord': arecord, 'noop': noop, 'anoop': anoop}


queue = tasks = None
if os.environ.get('SQLQ_BENCH_DB'):
    queue, tasks = make(os.environ['SQLQ_BENCH_DB'])
