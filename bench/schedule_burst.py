#!/usr/bin/env python3
"""A burst of due scheduled tasks: how long moving them to the queue holds SQLite's write
lock, and how long another producer's enqueue waits meanwhile.

    python bench/schedule_burst.py                       # 100k tasks due at once
    python bench/schedule_burst.py -n 300000
    python bench/schedule_burst.py --sqlq-src /tmp/old   # another sqlq tree (before/after)

N tasks (``bench.noop``) are put in the schedule of a fresh SqliteQueue, all due. A producer
subprocess then enqueues one task every 2 ms on the same file and times each call. The bench
process calls ``queue.enqueue_due()`` -- what the consumer's scheduler does -- and times each
of its transactions (``queue.atomically`` calls: from ``BEGIN IMMEDIATE``, which takes the
write lock, to the commit, which releases it). Reported: the whole move, the transactions,
the longest one (the longest the lock was held at a time), and the producer's enqueue times
while the move ran (max, p99, p50). One table on stdout; progress on stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PRODUCER_GAP = 0.002   # seconds between two enqueues of the other producer


def log(message: str) -> None:
    print('[%s] %s' % (time.strftime('%H:%M:%S'), message), file=sys.stderr, flush=True)


def make_queue(path: str) -> Any:
    from sqlq import SqliteQueue
    queue = SqliteQueue(path, name='bench')

    @queue.task(name='bench.noop')
    def noop(i: int) -> int:
        return i

    return queue, noop


def child_produce(path: str, stop_path: str, out_path: str) -> int:
    """The other producer: one enqueue every PRODUCER_GAP s until ``stop_path`` exists."""
    queue, noop = make_queue(path)
    calls = []
    i = 0
    while not os.path.exists(stop_path):
        t0 = time.monotonic()
        noop(i)
        calls.append((t0, time.monotonic() - t0))
        i += 1
        time.sleep(PRODUCER_GAP)  # the producer's own pace
    with open(out_path, 'w') as f:
        json.dump(calls, f)
    queue.close()
    return 0


def percentile(values: List[float], q: float) -> float:
    data = sorted(values)
    if not data:
        return float('nan')
    k = (len(data) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def run(n: int, chunk: Optional[int], workdir: str) -> Dict[str, Any]:
    path = os.path.join(workdir, 'burst.db')
    queue, noop = make_queue(path)
    now = queue.clock()
    log('scheduling %d tasks, all due' % n)
    for start in range(0, n, 10000):
        with queue.storage.transaction():
            for i in range(start, min(n, start + 10000)):
                queue.storage.add_to_schedule(queue.serialize_task(noop.s(i)), now - 1.0)
    queue.storage.checkpoint()
    queue.storage.defer_checkpoints(True)  # as in a consumer: no checkpoint in its commits
    if chunk is not None:
        queue.scheduling.chunk = chunk
    holds: List[float] = []
    atomically = queue.atomically

    def timed(block: Any) -> Any:
        t0 = time.monotonic()
        try:
            return atomically(block)
        finally:
            holds.append(time.monotonic() - t0)

    queue.atomically = timed  # type: ignore[method-assign]
    stop_path = os.path.join(workdir, 'stop')
    out_path = os.path.join(workdir, 'producer.json')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + ([os.environ['PYTHONPATH']] if os.environ.get('PYTHONPATH') else [])))
    producer = subprocess.Popen([sys.executable, os.path.abspath(__file__), '--sqlq-src', ROOT,
                                 '--child-produce', path, stop_path, out_path], env=env)
    try:
        time.sleep(0.5)  # the producer is up and enqueuing
        log('moving the due tasks (enqueue_due)')
        t0 = time.monotonic()
        moved = queue.enqueue_due()
        t1 = time.monotonic()
        time.sleep(0.1)
        open(stop_path, 'w').close()
        producer.wait(30)
    finally:
        if producer.poll() is None:
            producer.kill()
    with open(out_path) as f:
        calls = json.load(f)
    during = [d for s, d in calls if s + d >= t0 and s <= t1]
    pending = queue.pending_count()
    queue.close()
    if len(moved) != n:
        raise SystemExit('moved %d of %d tasks' % (len(moved), n))
    return {'n': n, 'chunk': getattr(queue.scheduling, 'chunk', None) if chunk else None,
            'move_s': t1 - t0, 'transactions': len(holds), 'hold_max_ms': max(holds) * 1e3,
            'hold_p50_ms': percentile(holds, 50) * 1e3, 'producer_calls': len(during),
            'producer_max_ms': max(during) * 1e3 if during else float('nan'),
            'producer_p99_ms': percentile(during, 99) * 1e3,
            'producer_p50_ms': percentile(during, 50) * 1e3, 'ready_after': pending}


def main(argv: Optional[List[str]] = None) -> int:
    global ROOT
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('-n', '--tasks', type=int, default=100000)
    parser.add_argument('--chunk', type=int, default=None,
                        help="Schedule.chunk (default: the tree's own)")
    parser.add_argument('--sqlq-src', default=None, help='measure the sqlq package in DIR')
    parser.add_argument('--json', default=None)
    parser.add_argument('--child-produce', nargs=3, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sqlq_src:
        ROOT = os.path.abspath(args.sqlq_src)
    sys.path.insert(0, ROOT)
    if args.child_produce:
        return child_produce(*args.child_produce)
    workdir = tempfile.mkdtemp(prefix='sqlq-burst-')
    try:
        result = run(args.tasks, args.chunk, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    import sqlq
    print('schedule burst — %s; sqlq from %s; N=%d\n'
          % (time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()),
             os.path.dirname(os.path.dirname(sqlq.__file__)), args.tasks))
    rows = [('move all due tasks (s)', '%.2f' % result['move_s']),
            ('transactions', '%d' % result['transactions']),
            ('write lock held, longest (ms)', '%.1f' % result['hold_max_ms']),
            ('write lock held, median (ms)', '%.1f' % result['hold_p50_ms']),
            ("other producer's enqueues during the move", '%d' % result['producer_calls']),
            ("other producer's enqueue, longest (ms)", '%.1f' % result['producer_max_ms']),
            ("other producer's enqueue, p99 (ms)", '%.1f' % result['producer_p99_ms']),
            ("other producer's enqueue, p50 (ms)", '%.2f' % result['producer_p50_ms'])]
    print('| figure | value |\n|---|---:|')
    for label, value in rows:
        print('| %s | %s |' % (label, value))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
