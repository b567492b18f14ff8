#!/usr/bin/env python3
"""Instructions per task of sqlq's enqueue paths next to raw apsw's (callgrind: the same count
for the same code, whatever else the machine is doing), for issue 17's "figures against the
physical limit" (compare.py measures the same rows in wall time).

    python bench/enqueue_cost.py                          # this tree, N=5000
    python bench/enqueue_cost.py --src /path/to/other/checkout --src .  -n 5000
    python bench/enqueue_cost.py --src OTHER --src . --wall 7   # wall time, interleaved

Rows: ``map`` (``noop.map(range(N))``), ``single`` (N calls of ``noop(i)``), the storage calls
alone (``storage.enqueue_many`` of N messages with their keys; N ``storage.enqueue``), and
bench/_limits.py's raw statements (1000-row ``executemany`` per transaction; one autocommit
INSERT per row). Each count is a run's total minus that of a run that does only the set-up
(open, warm up with 200 calls of each kind, make N messages, rows and keys), divided by N.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
import _callgrind as C  # noqa: E402

SCRIPT = r'''
import gc, os, sys, tempfile, time
n, step = int(sys.argv[1]), sys.argv[2]
sys.path.insert(0, %(bench)r)
import _limits
from sqlq import SqliteQueue, _accel
workdir = tempfile.mkdtemp()
queue = SqliteQueue(os.path.join(workdir, 'b.db'), name='bench')

@queue.task(name='bench.noop')
def noop(i):
    return None

noop.map(range(200))
for i in range(200):
    noop(i)
data = b'x' * _limits.NOOP_MESSAGE_SIZE
rows = [('bench', 0, data, time.time())] * n
keys = [_accel.new_task_id() for _ in range(n)]
conn = _limits._open(workdir, 'raw.db')
gc.collect()
gc.freeze()
if step == 'map':
    noop.map(range(n))
elif step == 'single':
    for i in range(n):
        noop(i)
elif step == 'storage_many':
    queue.storage.enqueue_many([(data, 0)] * n, keys)
elif step == 'storage_single':
    for key in keys:
        queue.storage.enqueue(data, 0, key)
elif step == 'raw_batch':
    for start in range(0, n, 1000):
        conn.execute('BEGIN IMMEDIATE')
        conn.executemany(_limits.INSERT, rows[start:start + 1000])
        conn.execute('COMMIT')
elif step == 'raw_single':
    for row in rows:
        conn.execute(_limits.INSERT, row)
conn.close()
queue.close()
'''

#: --wall: one measurement in a fresh process: argv mode, N -> µs per task on stdout.
WALL = r'''
import os, sys, tempfile, time
mode, n = sys.argv[1], int(sys.argv[2])
sys.path.insert(0, %(bench)r)
import _limits
workdir = tempfile.mkdtemp()
if mode.startswith('limit'):
    f = _limits.batched_inserts if mode == 'limit_batch' else _limits.single_commits
    print(f(workdir, n)['seconds'] / n * 1e6)
    sys.exit()
from sqlq import SqliteQueue
queue = SqliteQueue(os.path.join(workdir, 'b.db'), name='bench')

@queue.task(name='bench.noop')
def noop(i):
    return None

for i in range(200):
    noop(i)
noop.map(range(200))
t0 = time.perf_counter()
if mode == 'map':
    noop.map(range(n))
else:
    for i in range(n):
        noop(i)
print((time.perf_counter() - t0) / n * 1e6)
queue.close()
'''


def wall(srcs: List[str], rounds: int) -> None:
    """Rounds of: raw limit, then each tree (map of 20,000; 5,000 single calls); medians."""
    import statistics
    import subprocess
    script = WALL % {'bench': HERE}
    times: Dict[Tuple[str, str], List[float]] = {}
    for _ in range(rounds):
        for mode, n, limit in (('map', 20000, 'limit_batch'), ('single', 5000, 'limit_single')):
            for name, src in [(limit, srcs[-1])] + [(s, s) for s in srcs]:
                env = dict(os.environ, PYTHONPATH=src)
                out = subprocess.run([sys.executable, '-c', script,
                                      limit if name == limit else mode, str(n)],
                                     env=env, cwd=tempfile.gettempdir(), check=True,
                                     stdout=subprocess.PIPE, timeout=600).stdout
                times.setdefault((mode, name), []).append(float(out.decode().split()[-1]))
    print('wall µs per task, %d interleaved rounds: median [min-max]' % rounds)
    for mode, limit in (('map', 'limit_batch'), ('single', 'limit_single')):
        ref = statistics.median(times[(mode, limit)])
        for name in [limit] + srcs:
            values = times[(mode, name)]
            median = statistics.median(values)
            print('%-7s %-40s %7.2f [%.2f-%.2f]  %s' % (
                mode, name, median, min(values), max(values),
                '' if name == limit else 'limit / it: %.0f %%' % (ref / median * 100)))


STEPS = ('map', 'raw_batch', 'storage_many', 'single', 'raw_single', 'storage_single')


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('-n', '--tasks', type=int, default=5000)
    parser.add_argument('--src', action='append', default=None, metavar='DIR',
                        help='a tree holding the sqlq package (repeatable; default: this one)')
    parser.add_argument('--steps', default=','.join(STEPS))
    parser.add_argument('--wall', type=int, default=0, metavar='ROUNDS',
                        help='measure wall time instead, in ROUNDS interleaved rounds')
    args = parser.parse_args(argv)
    srcs = args.src or [os.path.dirname(HERE)]
    if args.wall:
        wall(srcs, args.wall)
        return 0
    steps = args.steps.split(',')
    script = SCRIPT % {'bench': HERE}
    counts = {}
    for src in srcs:
        with tempfile.TemporaryDirectory(prefix='sqlq-pycache-') as cache:
            # the same set-up for N (its messages, rows and keys), without the step
            base = C.count_instructions(script, src, '', args.tasks, 'none', cache)
            counts[src] = {step: (C.count_instructions(script, src, '', args.tasks, step, cache)
                                  - base) / args.tasks for step in steps}
    print('instructions per task (callgrind), N=%d' % args.tasks)
    print('| step | %s |' % ' | '.join(srcs))
    print('|---|%s' % ('---:|' * len(srcs)))
    for step in steps:
        print('| %s | %s |' % (step, ' | '.join('%.0f' % counts[src][step] for src in srcs)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
