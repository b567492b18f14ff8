"""A huey SqliteHuey for the benchmarks: ``huey_consumer huey_app.huey`` with the database
file named by ``HUEY_BENCH_DB`` (the bench process builds its own handle with :func:`make`)."""
import os

import _ledger
from huey import SqliteHuey

#: Seconds huey's connections wait for the write lock (huey's default: 5). A CI run failed
#: when the bench's producer, beside a busy huey consumer on the loaded 2-core VM, waited more
#: than 5 s ("database is locked": SQLite's busy handler sleeps up to 100 ms between tries and
#: the consumer kept taking the lock meanwhile). The bench measures delays; it does not fail.
TIMEOUT = 60.0


def make(filename):
    huey = SqliteHuey('bench', filename=filename, timeout=TIMEOUT)

    @huey.task(name='bench.record')
    def record(tag, enqueued):
        return _ledger.report(tag, enqueued)

    return huey, record


huey = record = noop = sized = prio = urgent = None
if os.environ.get('HUEY_BENCH_DB'):
    huey, record = make(os.environ['HUEY_BENCH_DB'])
    noop = _ledger.add_noop(huey)  # bench/compare.py's drain task
    sized, prio, urgent = _ledger.add_scale_tasks(huey)  # bench/scale.py's
