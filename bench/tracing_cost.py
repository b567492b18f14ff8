"""What OpenTelemetry tracing (``sqlq.tracing``) costs on the hot paths, in instructions per
task (valgrind's callgrind: the same count for the same code and input, whatever else the
machine is doing): a single enqueue, ``enqueue_many``, and the no-op drain of one in-process
``Worker`` (batch claims, group commits), on a fresh SQLite file.

    python bench/tracing_cost.py --base /tmp/old      # with a tree before tracing existed
    python bench/tracing_cost.py -n 2000

Columns: ``base`` (the sqlq package in ``--base DIR``, e.g. a ``git archive`` of the commit
before, extension built in place), ``off`` (this tree, ``tracing`` left off: the default),
``idle`` (``tracing=True`` with opentelemetry-api imported but no tracer provider configured),
``disabled`` (``tracing=`` an SDK provider with ``OTEL_SDK_DISABLED=true``) and ``sdk`` (an
SDK provider recording every span, exported by a SimpleSpanProcessor to an exporter that
drops them: the price of the spans themselves). Per task, the drain's count is that of a run
that enqueues and drains minus that of a run that only enqueues, and so on; the worker's
batch and group sizes are pinned to what a no-op drain reaches at full speed, as in
``bench/history_cost.py``. Nothing is asserted.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
from typing import Dict, List, Optional, Tuple

COUNTED = textwrap.dedent('''
    import gc, itertools, os, sys, tempfile, threading
    from sqlq import SqliteQueue, _accel
    from sqlq.worker import Worker
    n, step, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    # Task ids from a counter, not the clock and os.urandom: the same keys, so the same
    # B-tree work, in every run (the counts then differ only by the code that ran).
    ids = itertools.count(1 << 40)
    _accel.new_task_id = lambda: '0190a000-0000-7000-8000-%012x' % next(ids)
    options = {}
    if mode == 'idle':
        options['tracing'] = True
    elif mode in ('disabled', 'sdk'):
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (SimpleSpanProcessor, SpanExporter,
                                                    SpanExportResult)

        class Drop(SpanExporter):
            def export(self, spans):
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(Drop()))
        options['tracing'] = provider
    queue = SqliteQueue(os.path.join(tempfile.mkdtemp(), 'b.db'), name='bench', **options)

    @queue.task(name='bench.noop')
    def noop(i):
        return None

    if step == 'single':
        for i in range(n):
            noop(i)
    elif step != 'start':
        queue.enqueue_many([noop.s(i) for i in range(n)])
    gc.collect()
    gc.freeze()
    if step == 'drain':
        import sqlq.revocation
        sqlq.revocation.REVOKE_PREFETCH_TTL = 1e9
        worker = Worker(queue, threading.Event(), name='bench')
        worker.outcomes.max_delay = 1e9
        with queue.outcome_writer.grouping(worker.outcomes), queue.storage.worker_session():
            while True:
                worker._mean_run = 1e-9
                if not worker.run_once():
                    break
            worker.outcomes.flush()
    queue.close()
''')

STEPS = ('start', 'bulk', 'drain', 'single')


def count(src: str, mode: str, n: int, step: str, cache: str) -> int:
    """Instructions of one run of COUNTED (after an uncounted run compiled its imports)."""
    env = dict(os.environ, PYTHONPATH=src, PYTHONPYCACHEPREFIX=cache, PYTHONHASHSEED='0')
    env.pop('PYTHONDONTWRITEBYTECODE', None)
    if mode == 'disabled':
        env['OTEL_SDK_DISABLED'] = 'true'
    command = [sys.executable, '-c', COUNTED, str(n), step, mode]
    subprocess.run(command, env=env, cwd=cache, stdout=subprocess.DEVNULL, check=True,
                   timeout=600)
    proc = subprocess.run(['setarch', '-R', 'valgrind', '--tool=callgrind',
                           '--callgrind-out-file=/dev/null'] + command, env=env, cwd=cache,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True,
                          timeout=1800)
    for line in proc.stderr.decode().splitlines():
        if 'Collected :' in line:
            return int(line.split(':')[-1])
    raise RuntimeError('callgrind printed no count: %s' % proc.stderr.decode()[-500:])


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('-n', '--tasks', type=int, default=2000)
    parser.add_argument('--base', default=None, help='a tree of sqlq before tracing')
    parser.add_argument('--modes', default='off,idle,disabled,sdk')
    args = parser.parse_args(argv)
    here = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
    columns: List[Tuple[str, str, str]] = []
    if args.base:
        columns.append(('base', os.path.abspath(args.base), 'off'))
    columns += [(mode, here, mode) for mode in args.modes.split(',')]
    counts: Dict[str, Dict[str, int]] = {}
    for name, src, mode in columns:
        with tempfile.TemporaryDirectory(prefix='sqlq-pycache-') as cache:
            counts[name] = {step: count(src, mode, 0 if step == 'start' else args.tasks, step,
                                        cache) for step in STEPS}
        print('%s done' % name, file=sys.stderr)
    n = args.tasks
    heads = [name for name, _, _ in columns]
    print('tracing cost in instructions per task (callgrind), N=%d' % n)
    print('| path | %s |' % ' | '.join(heads))
    print('|---|%s' % ('---:|' * len(heads)))
    for label, step, minus in (('no-op drain', 'drain', 'bulk'),
                               ('enqueue_many', 'bulk', 'start'),
                               ('single enqueue', 'single', 'start')):
        cells = ['%.0f' % ((counts[h][step] - counts[h][minus]) / n) for h in heads]
        print('| %s | %s |' % (label, ' | '.join(cells)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
