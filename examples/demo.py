"""sqlq demo: tasks defined on a queue in one SQLite file.

Run ``python examples/demo.py`` (the README's demo command does). It enqueues tasks from
this process, starts a real consumer process on the same file, and prints results as the
consumer completes them.
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
import time

from sqlq import SqliteQueue, TaskException, chord, crontab

# A fresh database per run (the consumer process gets the same path through the environment).
DB_PATH = os.environ.get('SQLQ_DEMO_DB') or os.path.join(
    tempfile.mkdtemp(prefix='sqlq-demo-'), 'demo.db')
os.environ['SQLQ_DEMO_DB'] = DB_PATH
queue = SqliteQueue(DB_PATH, name='demo')


@queue.task()
def add(a: int, b: int) -> int:
    return a + b


@queue.task(retries=2, retry_delay=0.2)
def flaky(n: int) -> str:
    # Fails on the first attempt, succeeds on the retry.
    if queue.put_if_empty('flaky-%d' % n, 'failed once'):
        raise RuntimeError('transient failure for %d' % n)
    return 'flaky(%d) ok after a retry' % n


@queue.task()
def total(values: list) -> int:
    return sum(values)


@queue.periodic_task(crontab(minute='*/5'))
def tidy() -> None:
    # Logged, not printed: the consumer shares this terminal, and its prints would land
    # in the middle of the report lines below.
    logging.getLogger('demo').info('tidy ran')


def main() -> int:
    queue.flush()
    started = time.monotonic()
    sums = add.map([(i, i * 10) for i in range(20)])          # one transaction
    pipeline = queue.enqueue(add.s(1, 2).then(add, 100))      # 3, then 103
    fan_in = queue.enqueue(chord([add.s(i, i) for i in range(5)], total.s()))
    later = add.schedule((40, 2), delay=0.5)
    retried = flaky(1)
    print('enqueued %d tasks (+1 scheduled) in %s' % (len(queue), DB_PATH))

    from demo_consumer import run_consumer  # a real consumer on the same file
    with run_consumer(DB_PATH) as wait:
        print('map     :', wait(sums))
        print('pipeline:', wait(pipeline))
        print('chord   :', wait(fan_in))
        print('delayed :', wait(later))
        try:
            print('retried :', wait(retried))
        except TaskException as exc:
            # As in huey, a failed attempt stores its error even when a retry follows; the
            # retry's value replaces it once it has run.
            print('retried : first attempt failed (%s); waiting for the retry' % exc)
            retried.reset()
            print('retried :', wait(retried))
    print('all done in %.2fs; pending=%d scheduled=%d' % (
        time.monotonic() - started, queue.pending_count(), queue.scheduled_count()))
    return 0


if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
