"""What the task history costs on the hot paths: the no-op drain (a worker's claim batches and
group commits) with ``history=True`` and ``history=False``, and single and bulk enqueues,
A/B interleaved, each run a fresh process on a fresh SQLite file.

    python bench/history_cost.py                          # this tree: history on vs off
    python bench/history_cost.py --base /tmp/old          # and a tree before the history
    python bench/history_cost.py --quick                  # CI: small N, one round
    python bench/history_cost.py --instructions --base /tmp/old   # instruction counts

Columns: ``on`` (this tree, history=True, the default), ``off`` (this tree, history=False:
the message keys are still written and indexed), and with ``--base DIR`` ``base`` (the
sqlq package in DIR, e.g. a ``git archive`` of the commit before, extension built in place).

Per run: ``enqueue_many`` of N no-op tasks (tasks/s), then the same N drained by one
in-process ``Worker`` (``run_once`` until the queue is empty: batch claims, outcomes committed
in groups, as in a consumer's worker thread) (tasks/s), then M single enqueues (calls/s).
Each rate is given per wall-clock second and per CPU second of the process
(``time.process_time``: what the run itself used, less disturbed by other processes on a
shared machine). Figures are medians over ``--rounds`` rounds, each round running every
column once, in a rotating order (so that drift of the machine hits every column alike).

``--instructions`` counts the instructions each path executes instead (valgrind's callgrind:
the same count for the same code and input, whatever else the machine is doing): one run per
column and step, N=3000 unless ``-n``; per task, the drain's count is that of a run that
enqueues and drains minus that of a run that only enqueues, and so on. The worker's batch and
group sizes, and how long the revoke flags read with a batch stay fresh, which follow
measured time (distorted by callgrind's slowdown), are pinned to what a no-op drain reaches at
full speed (64 claims per batch, groups flushed with the next claim, flags read once per
batch). Nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _callgrind as C  # noqa: E402  (bench/_callgrind.py: the counted runs)

CHILD = textwrap.dedent('''
    import json, os, sys, threading, time
    from sqlq import SqliteQueue
    from sqlq.worker import Worker
    n, m, history = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    options = {} if history == 'base' else {'history': history == 'on'}
    path = os.path.join(sys.argv[4], 'bench.db')
    queue = SqliteQueue(path, name='bench', **options)

    @queue.task(name='bench.noop')
    def noop(i):
        return None

    clocks = (time.perf_counter, time.process_time)
    out = {}

    def timed(key, count, fn):
        before = [c() for c in clocks]
        fn()
        wall, cpu = [c() - b for c, b in zip(clocks, before)]
        out[key], out[key + '_cpu'] = count / wall, count / cpu

    timed('enqueue_many', n, lambda: queue.enqueue_many([noop.s(i) for i in range(n)]))
    worker = Worker(queue, threading.Event(), name='bench')

    def drain():
        with queue.outcome_writer.grouping(worker.outcomes), queue.storage.worker_session():
            while worker.run_once():
                pass
            worker.outcomes.flush()

    timed('drain', n, drain)
    assert queue.pending_count() == 0 and queue.running_count() == 0

    def enqueue():
        for i in range(m):
            noop(i)

    timed('enqueue', m, enqueue)
    queue.close()
    print(json.dumps(out))
''')


COUNTED = C.counted_script('''
    options = {} if mode == 'base' else {'history': mode == 'on'}
''')


def instructions(columns: List[Any], n: int) -> int:
    counts: Dict[str, Dict[str, int]] = {}
    for name, src, history in columns:
        with tempfile.TemporaryDirectory(prefix='sqlq-pycache-') as cache:
            counts[name] = {step: C.count_instructions(COUNTED, src, history,
                                                       0 if step == 'start' else n, step,
                                                       cache)
                            for step in C.STEPS}
    print('history cost in instructions per task (callgrind), N=%d' % n)
    heads = [name for name, _, _ in columns]
    print('| path | %s | on / off |%s' % (' | '.join(heads),
                                           ' on / base |' if 'base' in counts else ''))
    print('|---|%s---:|%s' % ('---:|' * len(heads), '---:|' if 'base' in counts else ''))
    for label, step, minus in (('no-op drain', 'drain', 'bulk'),
                               ('enqueue_many', 'bulk', 'start'),
                               ('single enqueue', 'single', 'start')):
        per = {name: (counts[name][step] - counts[name][minus]) / n for name in heads}
        line = '| %s | %s | %.3f |' % (label, ' | '.join('%.0f' % per[h] for h in heads),
                                       per['on'] / per['off'])
        if 'base' in per:
            line += ' %.3f |' % (per['on'] / per['base'])
        print(line)
    return 0


def run_child(src: str, history: str, n: int, m: int) -> Dict[str, float]:
    with tempfile.TemporaryDirectory(prefix='sqlq-history-cost-') as workdir:
        env = dict(os.environ, PYTHONPATH=src)
        # cwd: not this tree, whose sqlq would shadow PYTHONPATH's (-c puts cwd first)
        proc = subprocess.run([sys.executable, '-c', CHILD, str(n), str(m), history, workdir],
                              env=env, cwd=workdir, stdout=subprocess.PIPE, check=True,
                              timeout=600)
    figures: Dict[str, float] = json.loads(proc.stdout.decode().splitlines()[-1])
    return figures


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('-n', '--tasks', type=int, default=20_000)
    parser.add_argument('-m', '--enqueues', type=int, default=5_000)
    parser.add_argument('--rounds', type=int, default=7)
    parser.add_argument('--base', default=None, help='a tree of sqlq before the history')
    parser.add_argument('--quick', action='store_true', help='N=2000, M=500, one round')
    parser.add_argument('--json', default=None, metavar='PATH')
    parser.add_argument('--instructions', action='store_true',
                        help='count instructions with valgrind instead of timing')
    args = parser.parse_args(argv)
    if args.quick:
        args.tasks, args.enqueues, args.rounds = 2000, 500, 1
    here = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
    columns = [('on', here, 'on'), ('off', here, 'off')]
    if args.base:
        columns.append(('base', os.path.abspath(args.base), 'base'))
    if args.instructions:
        return instructions(columns, args.tasks if '-n' in (argv or sys.argv) or
                            '--tasks' in (argv or sys.argv) else 3000)
    runs: Dict[str, List[Dict[str, float]]] = {name: [] for name, _, _ in columns}
    for round_ in range(args.rounds):
        shift = round_ % len(columns)  # each column first in turn: no column always runs cold
        for name, src, history in columns[shift:] + columns[:shift]:
            runs[name].append(run_child(src, history, args.tasks, args.enqueues))
        print('round %d/%d done' % (round_ + 1, args.rounds), file=sys.stderr)
    keys = ('drain', 'enqueue_many', 'enqueue')
    keys += tuple(key + '_cpu' for key in keys)
    medians = {name: {key: statistics.median(r[key] for r in results) for key in keys}
               for name, results in runs.items()}
    print('history cost: N=%d drained, M=%d single enqueues, median of %d rounds'
          % (args.tasks, args.enqueues, args.rounds))
    heads = [name for name, _, _ in columns]
    print('| figure | %s | on / off |%s' % (' | '.join(heads),
                                             ' on / base |' if args.base else ''))
    print('|---|%s---:|%s' % ('---:|' * len(heads), '---:|' if args.base else ''))
    for key, label in (('drain', 'no-op drain (tasks/s)'),
                       ('drain_cpu', 'no-op drain (tasks per CPU s)'),
                       ('enqueue_many', 'enqueue_many (tasks/s)'),
                       ('enqueue_many_cpu', 'enqueue_many (tasks per CPU s)'),
                       ('enqueue', 'single enqueue (calls/s)'),
                       ('enqueue_cpu', 'single enqueue (calls per CPU s)')):
        cells = ['%.0f' % medians[name][key] for name in heads]
        line = '| %s | %s | %.3f |' % (label, ' | '.join(cells),
                                       medians['on'][key] / medians['off'][key])
        if args.base:
            line += ' %.3f |' % (medians['on'][key] / medians['base'][key])
        print(line)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'args': vars(args), 'runs': runs, 'medians': medians}, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
