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
import sys
import tempfile
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _callgrind as C  # noqa: E402  (bench/_callgrind.py: the counted runs)

COUNTED = C.counted_script('''
    from sqlq import _accel
    import itertools
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
''')


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
            env = {'OTEL_SDK_DISABLED': 'true'} if mode == 'disabled' else None
            counts[name] = {step: C.count_instructions(COUNTED, src, mode,
                                                       0 if step == 'start' else args.tasks,
                                                       step, cache, env)
                            for step in C.STEPS}
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
