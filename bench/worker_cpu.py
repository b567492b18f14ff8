"""Where the consumer's CPU per task goes as workers are added (issue 17, item 3).

Drains N no-op tasks with ``sqlq consume bench/_apps/sqlq_app.queue -w W -k KIND -q`` for each
worker set, from a copy of one pre-filled database, and prints per drained task: CPU (user and
system, of the consumer and its workers, from ``getrusage`` of the waited-for consumer: start-up
included, so use N of 40000 or more), voluntary and involuntary context switches, and with
``--instructions`` the instructions each process executed (cachegrind, ~50x slower: use a
smaller N), so that more CPU per task can be told apart from more work per task::

    python bench/worker_cpu.py -n 40000 --workers 1p,4p --repeat 3
    python bench/worker_cpu.py -n 5000 --workers 1p,4p --instructions

Instructions (process workers; thread workers' are the consumer's, start-up included): a
forked worker's count includes what its parent ran before the fork; the
consumer's own count (printed) is subtracted once per worker, which overstates the workers'
share by what the consumer ran after forking (its idle loop: small).
"""
from __future__ import annotations

import argparse
import glob
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
APPS = os.path.join(HERE, '_apps')
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, APPS)
os.environ.setdefault('BENCH_LEDGER', '')  # the tasks report to no ledger

import _ledger  # noqa: E402

from sqlq import SqliteQueue  # noqa: E402

KINDS = {'t': 'thread', 'p': 'process'}
DRAIN_TIMEOUT = 600.0


def template(path: str, n: int) -> None:
    queue = SqliteQueue(path, name='bench')
    noop = _ledger.add_noop(queue)
    for start in range(0, n, 5000):
        noop.map(range(start, min(n, start + 5000)))
    queue.close()


def instructions(pattern: str) -> List[Tuple[int, int]]:
    """(pid, instructions) of each cachegrind output file matching ``pattern``."""
    counts = []
    for path in glob.glob(pattern):
        with open(path) as f:
            for line in f:
                if line.startswith('summary:'):
                    counts.append((int(path.rsplit('.', 1)[1]), int(line.split()[1])))
    return sorted(counts)


def drain(db: str, n: int, workers: int, kind: str, workdir: str,
          cachegrind: Optional[str]) -> Dict[str, float]:
    env = dict(os.environ, SQLQ_BENCH_DB=db, PYTHONPATH=os.pathsep.join(
        [APPS, os.path.dirname(HERE)] + ([os.environ['PYTHONPATH']]
                                          if os.environ.get('PYTHONPATH') else [])))
    command = [sys.executable, '-m', 'sqlq', 'consume', 'sqlq_app.queue',
               '-w', str(workers), '-k', kind, '-q']
    if cachegrind:
        command = ['valgrind', '--tool=cachegrind', '--cache-sim=no', '--trace-children=yes',
                   '--cachegrind-out-file=%s.%%p' % cachegrind] + command
    queue = SqliteQueue(db, name='bench')
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(os.path.join(workdir, 'consumer.log'), 'ab') as log:
        proc = subprocess.Popen(command, env=env, cwd=APPS, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + DRAIN_TIMEOUT
        first = None
        while queue.storage.result_store_size() < n:
            if first is None and queue.pending_count() < n:
                first = time.monotonic()
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit('the drain did not finish (consumer status %s); see %s'
                                 % (proc.returncode, workdir))
            time.sleep(0.01)
        seconds = time.monotonic() - (first or time.monotonic())
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(120)
        queue.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    return {'rate': n / seconds if seconds else float('nan'),
            'user_us': user / n * 1e6, 'system_us': system / n * 1e6,
            'cpu_us': (user + system) / n * 1e6,
            'voluntary': (after.ru_nvcsw - before.ru_nvcsw) / n,
            'involuntary': (after.ru_nivcsw - before.ru_nivcsw) / n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('-n', '--tasks', type=int, default=40000)
    parser.add_argument('--workers', default='1p,4p', help='worker sets, e.g. 1t,1p,2p,4p')
    parser.add_argument('--repeat', type=int, default=1)
    parser.add_argument('--instructions', action='store_true',
                        help='run the consumer under cachegrind and count instructions')
    args = parser.parse_args()
    sets = [(int(spec[:-1]), KINDS[spec[-1]]) for spec in args.workers.split(',')]
    workdir = tempfile.mkdtemp(prefix='sqlq-worker-cpu-')
    full = os.path.join(workdir, 'template.db')
    template(full, args.tasks)
    print('| run | workers | tasks/s | CPU µs/task | user | system | voluntary switches/task '
          '| involuntary | instructions/task (workers) |')
    print('|---|---|---:|---:|---:|---:|---:|---:|---:|')
    try:
        for run in range(1, args.repeat + 1):
            for workers, kind in sets:
                db = os.path.join(workdir, 'run.db')
                for suffix in ('', '-wal', '-shm'):
                    if os.path.exists(db + suffix):
                        os.unlink(db + suffix)
                shutil.copyfile(full, db)
                prefix = None
                if args.instructions:
                    prefix = os.path.join(workdir, 'cg-%d%s-%d' % (workers, kind[0], run))
                r = drain(db, args.tasks, workers, kind, workdir, prefix)
                per_task = ''
                if prefix:
                    counts = instructions(prefix + '.*')
                    consumer = counts[0][1]  # the lowest pid: the consumer, forked from
                    forked = sum(c for _, c in counts[1:]) - consumer * (len(counts) - 1)
                    if kind == 'process':
                        per_task = '%.0f (consumer %.3g in all)' % (forked / args.tasks, consumer)
                    else:  # the workers are threads of the consumer: start-up included
                        per_task = '%.0f (start-up included)' % (consumer / args.tasks)
                print('| %d | %d %s | %.0f | %.1f | %.1f | %.1f | %.3f | %.3f | %s |' % (
                    run, workers, kind, r['rate'], r['cpu_us'], r['user_us'], r['system_us'],
                    r['voluntary'], r['involuntary'], per_task), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    main()
