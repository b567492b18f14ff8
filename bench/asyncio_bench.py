#!/usr/bin/env python3
"""The asyncio worker beside the thread worker, in one run on one machine: drain rate and
consumer CPU per task of N no-op tasks, p50/p99 enqueue→start latency on an idle consumer, and
the cost of enqueueing from a coroutine.

    python bench/asyncio_bench.py            # N=20000 drain, 300 latency samples (~3 min)
    python bench/asyncio_bench.py --quick    # CI: N=2000, 40 samples (< 1 min)
    python bench/asyncio_bench.py --json /tmp/aio.json

Systems (each a real ``sqlq consume sqlq_aio_app.queue`` subprocess on a fresh database;
bench/_apps/sqlq_aio_app.py):

| system | consumer | tasks |
|---|---|---|
| thread -w 1 | ``-k thread -w 1`` (sqlq's default) | plain ``def`` no-ops |
| thread -w 1, async tasks | ``-k thread -w 1`` | ``async def`` no-ops (``asyncio.run`` per task) |
| asyncio -w 1 | ``-k asyncio -w 1`` | ``async def`` no-ops |
| asyncio -w 16 | ``-k asyncio -w 16`` | ``async def`` no-ops |
| asyncio -w 16, plain tasks | ``-k asyncio -w 16`` | plain no-ops (in its thread pool) |

- **drain**: N tasks are enqueued (``map``, 5000 per transaction) before the consumer starts;
  the clock starts when the first task starts (a datagram from the task: bench/_apps/_ledger.py)
  and stops when the bench, polling the result count every 25 ms, sees N results (the midpoint
  of the last two polls). CPU: utime+stime of the consumer's process tree over the drain.
- **latency**: bench/latency.py's protocol: one task at a time, each after a random 5-25 ms
  pause once the previous started, so the consumer is idle every time; latency = the task's
  start − the instant before the enqueue call (CLOCK_MONOTONIC in both processes).
- **enqueue from a coroutine** (on the asyncio -w 16 system's database, its consumer idle):
  the duration of a direct call ``record(...)`` made inside a coroutine (the event loop is
  blocked that long) and of ``await record.aenqueue(...)`` (the loop is free; the call runs
  in the loop's default executor).

Exit status 1 if a consumer fails to start or does not drain in time.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
import latency as L  # noqa: E402  (consumers, ledger, /proc CPU, percentiles)

FAMILY = 'sqlq-aio'
L.FAMILIES[FAMILY] = ('sqlq_aio_app', 'SQLQ_BENCH_DB')
#: name, consumer options, latency task, drain task
SYSTEMS: List[Tuple[str, List[str], str, str]] = [
    ('thread -w 1', ['-k', 'thread', '-w', '1'], 'record', 'noop'),
    ('thread -w 1, async tasks', ['-k', 'thread', '-w', '1'], 'arecord', 'anoop'),
    ('asyncio -w 1', ['-k', 'asyncio', '-w', '1'], 'arecord', 'anoop'),
    ('asyncio -w 16', ['-k', 'asyncio', '-w', '16'], 'arecord', 'anoop'),
    ('asyncio -w 16, plain tasks', ['-k', 'asyncio', '-w', '16'], 'record', 'noop'),
]
POLL = 0.025
FILL_CHUNK = 5000


def fill(tasks: Dict[str, Any], name: str, n: int) -> None:
    for start in range(0, n, FILL_CHUNK):
        tasks[name].map(range(start, min(n, start + FILL_CHUNK)))


def drain(name: str, options: List[str], task: str, n: int, workdir: str,
          timeout: float) -> Dict[str, float]:
    slug = 'drain-' + name.replace(' ', '').replace(',', '-')
    db = os.path.join(workdir, slug + '.db')
    queue, tasks = L.app_handle(FAMILY, db)
    ledger = L.Ledger(os.path.join(workdir, slug + '.sock'))
    try:
        fill(tasks, task, n)
        proc = L.start_consumer(FAMILY, options + ['-q'], db, ledger.path,
                                os.path.join(workdir, slug + '.log'))
        try:
            _, first = ledger.wait('first', L.START_TIMEOUT, proc)
            cpu0, _ = L.tree_cpu(proc.pid)
            deadline = time.monotonic() + timeout
            previous = first
            while True:
                done = queue.result_count()
                now = time.monotonic()
                if done >= n:
                    break
                if now > deadline or proc.poll() is not None:
                    raise L.BenchError('%s: %d of %d tasks done' % (name, done, n))
                previous = now
                time.sleep(POLL)  # the bench's polling interval, not synchronisation
            cpu1, _ = L.tree_cpu(proc.pid)
        finally:
            L.stop_consumer(proc)
        seconds = (previous + now) / 2 - first
        return {'rate': n / seconds, 'cpu_per_task_us': (cpu1 - cpu0) / n * 1e6}
    finally:
        ledger.close()
        queue.close()


def latency(name: str, options: List[str], task: str, samples: int, workdir: str,
            rng: random.Random, enqueue_samples: int) -> Dict[str, Any]:
    slug = 'latency-' + name.replace(' ', '').replace(',', '-')
    db = os.path.join(workdir, slug + '.db')
    queue, tasks = L.app_handle(FAMILY, db)
    ledger = L.Ledger(os.path.join(workdir, slug + '.sock'))
    proc = L.start_consumer(FAMILY, options + ['-q'], db, ledger.path,
                            os.path.join(workdir, slug + '.log'))
    try:
        tasks[task]('probe', time.monotonic())
        ledger.wait('probe', L.START_TIMEOUT, proc)
        L.measure_latency(tasks[task], ledger, proc, 'warmup', 5, rng, 10.0)
        from_call, _ = L.measure_latency(tasks[task], ledger, proc, 'run', samples, rng, 10.0)
        figures: Dict[str, Any] = {'latency_ms': L.summary(from_call)}
        if enqueue_samples:
            figures.update(enqueue_from_coroutine(tasks[task], ledger, proc, enqueue_samples,
                                                  rng))
        return figures
    finally:
        L.stop_consumer(proc)
        ledger.close()
        queue.close()


def enqueue_from_coroutine(record: Any, ledger: L.Ledger, proc: Any, samples: int,
                           rng: random.Random) -> Dict[str, Any]:
    """Microseconds a direct call blocks the loop, and an ``await aenqueue`` takes."""
    async def measure() -> Tuple[List[float], List[float]]:
        direct, awaited = [], []
        for i in range(samples):
            await asyncio.sleep(rng.uniform(*L.GAP))
            start = time.monotonic()
            record('direct-%d' % i, start)
            direct.append((time.monotonic() - start) * 1e6)
            ledger.wait('direct-%d' % i, 10.0, proc)
            await asyncio.sleep(rng.uniform(*L.GAP))
            start = time.monotonic()
            await record.aenqueue('awaited-%d' % i, start)
            awaited.append((time.monotonic() - start) * 1e6)
            ledger.wait('awaited-%d' % i, 10.0, proc)
        return direct, awaited

    direct, awaited = asyncio.run(measure())
    return {'direct_enqueue_us': L.summary(direct), 'aenqueue_us': L.summary(awaited)}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='CI: small N, few samples')
    parser.add_argument('-n', type=int, default=None, help='tasks per drain (20000)')
    parser.add_argument('--samples', type=int, default=None, help='latency samples (300)')
    parser.add_argument('--json', default=None, help='also write the figures to this file')
    args = parser.parse_args(argv)
    n = args.n or (2000 if args.quick else 20000)
    samples = args.samples or (40 if args.quick else 300)
    rng = random.Random(1)
    results: Dict[str, Dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix='sqlq-aio-bench-') as workdir:
        for name, options, record, noop in SYSTEMS:
            L.log('%s: drain of %d tasks' % (name, n))
            try:
                figures = drain(name, options, noop, n, workdir, timeout=120)
                L.log('%s: latency, %d samples' % (name, samples))
                figures.update(latency(name, options, record, samples, workdir, rng,
                                       samples if name == 'asyncio -w 16' else 0))
            except L.BenchError as exc:
                L.log('FAILED: %s' % exc)
                return 1
            results[name] = figures
    print('asyncio worker beside the thread worker (%d no-op tasks per drain, %d latency '
          'samples; %s)' % (n, samples, L.environment().get('cpu', '?')))
    print('| system | drain tasks/s | CPU µs/task | latency p50 ms | p99 ms |')
    print('|---|---:|---:|---:|---:|')
    for name, figures in results.items():
        lat = figures['latency_ms']
        print('| %s | %.0f | %.0f | %.2f | %.2f |' % (
            name, figures['rate'], figures['cpu_per_task_us'], lat['p50'], lat['p99']))
    aio = results['asyncio -w 16']
    for key, label in (('direct_enqueue_us', 'direct call in a coroutine (loop blocked)'),
                       ('aenqueue_us', 'await task.aenqueue(...)')):
        figures = aio[key]
        print('enqueue, %s: p50 %.0f µs, p99 %.0f µs, max %.0f µs' % (
            label, figures['p50'], figures['p99'], figures['max']))
    if args.json:
        with open(args.json, 'w') as fh:
            json.dump({'environment': L.environment(), 'n': n, 'samples': samples,
                       'results': results}, fh, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
