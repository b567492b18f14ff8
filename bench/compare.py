#!/usr/bin/env python3
"""sqlq next to huey's SqliteHuey, in one run on one machine: enqueue rate (one call per task
and batched), drain rate with 1 thread / 2 and 4 process workers, consumer CPU per task,
enqueue→start latency and idle CPU — one table, with the ratio sqlq/huey, sqlq's compiled fast
path against its pure-Python twin (``SQLQ_NO_EXTENSIONS=1``), and the targets of issue 5.

    python bench/compare.py                  # N=20000, 3 repeats (~7 minutes)
    python bench/compare.py --quick          # CI: N=2000, 1 repeat, short latency/idle (< 60 s)
    python bench/compare.py -n 50000 --workers 1t,4p --only sqlq --json /tmp/cmp.json
    python bench/compare.py --redis          # RedisQueue vs huey's RedisHuey, same table

Columns: ``sqlq`` (compiled fast path), ``sqlq twin`` (producer and consumer with
``SQLQ_NO_EXTENSIONS=1``), ``huey`` (SqliteHuey 3.5.4, its consumer tuned with
``-d 0.001 -m 0.01`` so that its polling delay does not cap its drain rate).

How each row is measured (see bench/README.md for the details):

- **enqueue single / batch**: a fresh subprocess per measurement opens a fresh database,
  warms up with 200 calls, then times N calls of ``noop(i)`` (one commit each), or one
  ``noop.map(range(N))`` (sqlq: one transaction; huey 3.5.4: ``TaskWrapper.map`` is a loop of
  single enqueues — its only batch API).
- **drain**: N no-op tasks are pre-filled into a template database (copied for every run),
  the real consumer command is started on the copy; the clock starts when the first task
  starts (reported over a Unix datagram by the task) and stops when the bench, polling the
  result count every 25 ms through its own read connection, sees N results stored (the end
  is taken as the midpoint between that poll and the one before). The consumer start-up
  (imports, forking workers) is therefore not counted.
- **CPU per task**: utime+stime of the consumer process and all its descendants (/proc)
  between the first task's start and the end of the drain, divided by N.
- **latency p50/p99, idle CPU**: ``bench/latency.py``'s measurement (its ``run_system``),
  with a shorter protocol: see ``--latency-n`` and ``--idle``.

With ``--redis``: the same table for sqlq's ``RedisQueue`` next to huey's ``RedisHuey``, on a
``redis-server`` started for the run (latency.py's ``BenchRedis``: 127.0.0.1, a free port, no
persistence, stopped at exit) and emptied (FLUSHALL) before every measurement, so that no system
sees another's keys. There is no template database: before each drain the N tasks are enqueued
afresh (sqlq: ``noop.map``; huey: its serialized messages pushed in chunks with one
multi-value LPUSH each), then the consumer is started. One more row per worker set: the
redis-server's own CPU per task over the drain (sqlq runs its queue operations as server-side
functions, huey as plain list/hash commands). Issue 5's absolute targets were written for
SQLite: in this mode the target column holds sqlq against huey (not worse) and the latency /
idle-CPU targets.

Every figure is the median of ``--repeat`` runs except latency and idle CPU (one run; the
latency percentiles are over ``--latency-n`` samples). Progress goes to stderr, the table to
stdout. Exit status 1 if a consumer fails to start, dies, or does not drain in time.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
import _limits  # noqa: E402  (bench/_limits.py: raw apsw on the same file system)
import latency as L  # noqa: E402  (bench/latency.py: consumers, ledger, /proc CPU, stats)

POLL = 0.025            # seconds between two result counts during a drain
STALL_TIMEOUT = 15.0    # a drain fails if no result was stored for this long
WARMUP_CALLS = 200      # enqueue calls before the timed ones, in the measuring subprocess
HUEY_TUNED = ['-d', '0.001', '-m', '0.01']

# column name -> (family, twin?)
COLUMNS: Dict[str, Tuple[str, bool]] = {
    'sqlq': ('sqlq', False),
    'sqlq twin': ('sqlq', True),
    'huey': ('huey', False),
}

# --redis: the same columns on RedisQueue / huey's RedisHuey (latency.py's Redis app families)
REDIS_COLUMNS: Dict[str, Tuple[str, bool]] = {
    'sqlq': ('sqlq-redis', False),
    'sqlq twin': ('sqlq-redis', True),
    'huey': ('huey-redis', False),
}

# Issue 5's targets for sqlq's figures: row key -> (op, bound, text)
TARGETS: Dict[str, Tuple[str, float, str]] = {
    'enqueue_single': ('>=', 25000, '≥ 25k/s'),
    'enqueue_batch': ('>=', 250000, '≥ 250k/s'),
    'drain_1t': ('>=', 20000, '≥ 20k/s'),
    'drain_2p': ('>=', 25000, '≥ 25k/s, ≥ 1 thread'),
    'drain_4p': ('>=', 25000, '≥ 25k/s, ≥ 1 thread'),
    'cpu_1t': ('<=', 40, '≤ 40 µs'),
    'cpu_2p': ('<=', 40, '≤ 40 µs'),
    'cpu_4p': ('<=', 40, '≤ 40 µs'),
    'latency_p50': ('<=', 1.0, '≤ 1 ms'),
    'latency_return_p50': ('<=', 1.0, '≤ 1 ms'),
    'latency_p99': ('<=', 5.0, '≤ 5 ms'),
    'idle_cpu': ('<=', 1.0, '≤ 1 %'),
}
# Issue 17: sqlq's figure as a fraction of raw apsw's on the same file system, measured in the
# same run (bench/_limits.py): sqlq row -> (limit row, least fraction, its label).
LIMITS: Dict[str, Tuple[str, float, str]] = {
    'enqueue_single': ('limit_single', 0.80, 'single-row commits ⁵'),
    'enqueue_batch': ('limit_batch', 0.50, 'batched inserts ⁶'),
    'drain_1t': ('limit_claim', 0.60, 'claim+ack loop ⁷'),
}
#: Limit row -> (bench/_limits.py function, label).
LIMIT_ROWS: Dict[str, Tuple[str, str]] = {
    'limit_single': ('single_commits', 'raw apsw: single-row commits (rows/s) ⁵'),
    'limit_batch': ('batched_inserts', 'raw apsw: batched inserts, 1000 per commit (rows/s) ⁶'),
    'limit_claim': ('claim_delete_loop', 'raw apsw: claim+ack, one commit per task (tasks/s) ⁷'),
    'limit_drain': ('claim_ack_loop', 'raw apsw: batched claim+ack with results, 64 per '
                    'commit (tasks/s) ⁸'),
}

# --redis: issue 5's rate and CPU targets were written for SQLite; on Redis, sqlq's rates and
# consumer CPU are held against huey's RedisHuey in the same run, latency and idle CPU against
# the same absolute targets. Row key prefix -> (op, text)
REDIS_VS_HUEY: Dict[str, Tuple[str, str]] = {
    'enqueue_': ('>=', '≥ huey'),
    'drain_': ('>=', '≥ huey'),
    'cpu_': ('<=', '≤ huey'),
}
REDIS_ABSOLUTE = ('latency_p50', 'latency_return_p50', 'latency_p99', 'idle_cpu')
FILL_CHUNK = 5000       # tasks per map / LPUSH when filling a queue before a drain

#: The redis-server of a --redis run (None: SQLite mode).
REDIS: Optional[L.BenchRedis] = None

#: Appended to latency.py's Redis app modules (REDIS_APPS) when compare.py writes them: the
#: consumer must know the drain task too, as bench/_apps/sqlq_app.py and huey_app.py do.
REDIS_APP_NOOP = """
noop = None
if {var} is not None:
    noop = _ledger.add_noop({var})  # bench/compare.py's drain task
"""


class Interrupted(Exception):
    pass


log = L.log


def parse_workers(text: str) -> List[Tuple[int, str]]:
    """'1t,2p,4p' -> [(1, 'thread'), (2, 'process'), (4, 'process')]."""
    kinds = {'t': 'thread', 'p': 'process'}
    out = []
    for item in text.split(','):
        item = item.strip()
        if len(item) < 2 or item[-1] not in kinds or not item[:-1].isdigit() \
                or int(item[:-1]) < 1:
            raise argparse.ArgumentTypeError(
                'workers must look like 1t,2p,4p (count + t=thread / p=process), not %r' % item)
        out.append((int(item[:-1]), kinds[item[-1]]))
    return out


def workers_key(workers: int, kind: str) -> str:
    return '%d%s' % (workers, kind[0])


@contextlib.contextmanager
def twin_mode(enabled: bool) -> Iterator[None]:
    """SQLQ_NO_EXTENSIONS=1 for subprocesses started inside (consumers, producers) and the twin
    codec in this process (latency.py's producer calls)."""
    if not enabled:
        yield
        return
    from sqlq import _accel
    previous_env = os.environ.get('SQLQ_NO_EXTENSIONS')
    previous_impl = _accel.IMPLEMENTATION
    os.environ['SQLQ_NO_EXTENSIONS'] = '1'
    _accel.use('twin')
    try:
        yield
    finally:
        _accel.use(previous_impl)
        if previous_env is None:
            os.environ.pop('SQLQ_NO_EXTENSIONS', None)
        else:
            os.environ['SQLQ_NO_EXTENSIONS'] = previous_env


def system_of(family: str) -> str:
    """'sqlq' or 'huey' (a family may be 'sqlq-redis', 'huey-redis')."""
    return family.split('-')[0]


def write_redis_apps(directory: str) -> None:
    """latency.py's Redis app modules, with the drain task, into ``directory`` (put on the
    consumers' and the enqueue subprocesses' path through ``L.REDIS_APP_DIR``)."""
    variables = {'sqlq_redis_app': 'queue', 'huey_redis_app': 'huey'}  # latency.py's names
    for module, text in L.REDIS_APPS.items():
        with open(os.path.join(directory, module + '.py'), 'w') as f:
            f.write(text + REDIS_APP_NOOP.format(var=variables[module]))
    L.REDIS_APP_DIR = directory


def open_app(family: str, db: str) -> Tuple[Any, Any]:
    """(queue/huey handle, noop task) on ``db`` in this process."""
    handle, _ = L.app_handle(family, db)
    import _ledger  # bench/_apps, on sys.path after app_handle
    return handle, _ledger.add_noop(handle)


def close_app(family: str, handle: Any) -> None:
    if system_of(family) == 'sqlq':
        handle.close()
    else:
        handle.storage.close()
        pool = getattr(handle.storage, 'pool', None)  # huey's RedisStorage.close() keeps it
        if pool is not None:
            pool.disconnect()


def result_count(family: str, handle: Any) -> int:
    if family == 'sqlq-redis':
        # RedisStorage.result_store_size() runs its 'stats' function, which checks the expiry
        # of every result key: O(results), ~10 ms at 20k results, and the single-threaded
        # server serves nobody meanwhile — polled every 25 ms it would slow the drain it
        # measures. Count the set of result keys instead (SCARD: constant cost; the no-op
        # results never expire); measure_drain checks the public count once at the end.
        storage = handle.storage
        return int(storage._client.scard(storage._qprefix + 'res'))
    return handle.storage.result_store_size()  # huey's RedisStorage: HLEN


# --------------------------------------------------------------------------------- enqueue

def child_enqueue(spec: str) -> int:
    """In a measuring subprocess: ``family,mode,n,db`` → one JSON line on stdout."""
    family, mode, n_text, db = spec.split(',', 3)
    n = int(n_text)
    handle, noop = open_app(family, db)
    for i in range(WARMUP_CALLS):
        noop(i)
    if mode == 'batch':
        noop.map(range(WARMUP_CALLS))
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    if mode == 'single':
        for i in range(n):
            noop(i)
    else:
        noop.map(range(n))
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    stored = handle.storage.queue_size()
    close_app(family, handle)
    expected = n + WARMUP_CALLS * (2 if mode == 'batch' else 1)
    if stored != expected:
        print('enqueue %s: %d tasks stored, expected %d' % (mode, stored, expected),
              file=sys.stderr)
        return 1
    impl = None
    if system_of(family) == 'sqlq':
        from sqlq import _accel
        impl = _accel.IMPLEMENTATION
    print(json.dumps({'seconds': seconds, 'rate': n / seconds, 'cpu_s': cpu,
                      'cpu_per_task_us': cpu / n * 1e6, 'impl': impl}))
    return 0


def measure_enqueue(column: str, mode: str, n: int, workdir: str, run: int,
                    timeout: float) -> Dict[str, Any]:
    family, twin = COLUMNS[column]
    if REDIS is not None:
        db = REDIS.fresh_url()  # FLUSHALL: an empty server for every measurement
    else:
        db = os.path.join(workdir, 'enqueue-%s-%s-%d.db'
                          % (column.replace(' ', '-'), mode, run))
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        L.app_paths() + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
    if twin:
        env['SQLQ_NO_EXTENSIONS'] = '1'
    cmd = [sys.executable, os.path.abspath(__file__), '--child-enqueue',
           '%s,%s,%d,%s' % (family, mode, n, db), '--sqlq-src', L.ROOT]
    proc = subprocess.Popen(cmd, cwd=L.APPS, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        raise L.BenchError('enqueue %s (%s) took longer than %.0f s'
                           % (mode, column, timeout)) from None
    except BaseException:  # ctrl-C, SIGTERM
        kill_group(proc)
        raise
    finally:
        if REDIS is None:
            for suffix in ('', '-wal', '-shm'):
                with contextlib.suppress(OSError):
                    os.unlink(db + suffix)
    if proc.returncode != 0:
        raise L.BenchError('enqueue %s (%s) failed (exit %s):\n%s'
                           % (mode, column, proc.returncode, err.strip()[-2000:]))
    result = json.loads(out.strip().splitlines()[-1])
    if system_of(family) == 'sqlq' and result['impl'] != ('twin' if twin else 'compiled'):
        raise L.BenchError('%s ran with the %s fast path' % (column, result['impl']))
    return result


def kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


# ----------------------------------------------------------------------------------- drain

def make_template(family: str, n: int, workdir: str) -> str:
    """A database holding N no-op tasks (``noop(0)`` … ``noop(N-1)``), closed, WAL folded in."""
    db = os.path.join(workdir, 'template-%s.db' % family)
    log('%s: pre-filling a template database with %d no-op tasks' % (family, n))
    t0 = time.monotonic()
    handle, noop = open_app(family, db)
    try:
        chunk = 5000
        for start in range(0, n, chunk):
            noop.map(range(start, min(n, start + chunk)))
        stored = handle.storage.queue_size()
    finally:
        close_app(family, handle)
    if stored != n:
        raise L.BenchError('template for %s holds %d tasks, expected %d' % (family, stored, n))
    log('  done in %.1f s' % (time.monotonic() - t0))
    return db


def fill_queue(family: str, handle: Any, noop: Any, n: int) -> None:
    """--redis: enqueue ``noop(0)`` … ``noop(N-1)`` on the (emptied) server before a drain,
    each system its fastest way. Not timed: the drain clock starts at the first task start."""
    for start in range(0, n, FILL_CHUNK):
        items = range(start, min(n, start + FILL_CHUNK))
        if system_of(family) == 'sqlq':
            noop.map(items)  # one call of the server-side enqueue function per chunk
        else:
            # huey 3.5.4 has no batch enqueue (TaskWrapper.map is one LPUSH round trip per
            # task): push huey's own serialized messages, oldest first, with one multi-value
            # LPUSH per chunk on its connection — the list huey.enqueue would have built.
            storage = handle.storage
            storage.conn.lpush(storage.queue_key,
                               *[handle.serialize_task(noop.s(i)) for i in items])
    stored = handle.storage.queue_size()
    if stored != n:
        raise L.BenchError('%s: %d tasks enqueued before the drain, expected %d'
                           % (family, stored, n))


def copy_db(template: str, db: str) -> None:
    for suffix in ('', '-wal'):
        if os.path.exists(template + suffix):
            shutil.copyfile(template + suffix, db + suffix)


def consumer_options(family: str, workers: int, kind: str, quiet: bool) -> List[str]:
    options = ['-w', str(workers), '-k', kind]
    if family == 'huey':
        options += HUEY_TUNED
    if quiet:
        options.append('-q')
    return options


def measure_drain(column: str, workers: int, kind: str, n: int, template: Optional[str],
                  workdir: str, run: int, args: argparse.Namespace) -> Dict[str, Any]:
    """A drain of N tasks; ``template`` is None with --redis (the queue is filled afresh)."""
    family, twin = COLUMNS[column]
    slug = '%s-%s-%d' % (column.replace(' ', '-'), workers_key(workers, kind), run)
    db = os.path.join(workdir, slug + '.db')
    logfile = os.path.join(workdir, slug + '.log')
    if REDIS is not None:
        db = REDIS.fresh_url()  # FLUSHALL, then fill
        handle, noop = open_app(family, db)
        try:
            t0 = time.monotonic()
            fill_queue(family, handle, noop, n)
            log('  %d tasks enqueued in %.2f s' % (n, time.monotonic() - t0))
        except BaseException:
            close_app(family, handle)
            raise
    else:
        copy_db(template, db)
        handle, _ = open_app(family, db)
    ledger = L.Ledger(os.path.join(workdir, slug + '.sock'))
    options = consumer_options(family, workers, kind, args.quiet_consumers)
    launched = time.monotonic()
    with twin_mode(twin):
        proc = L.start_consumer(family, options, db, ledger.path, logfile)
    try:
        _, first = ledger.wait('first', L.START_TIMEOUT, proc)
        cpu0, _ = L.tree_cpu(proc.pid)
        server0 = L.tree_cpu(REDIS.proc.pid)[0] if REDIS is not None else None
        deadline = time.monotonic() + args.drain_timeout
        next_report = time.monotonic() + 2.0
        last_done, last_change = -1, time.monotonic()
        previous_poll = first
        while True:
            done = result_count(family, handle)
            now = time.monotonic()
            if done >= n:
                break
            previous_poll = now
            if proc.poll() is not None:
                raise L.BenchError('consumer exited with status %s after %d of %d tasks'
                                   % (proc.returncode, done, n))
            if now > deadline:
                raise L.BenchError('only %d of %d tasks done after %.0f s (--drain-timeout)'
                                   % (done, n, args.drain_timeout))
            if done != last_done:
                last_done, last_change = done, now
            elif now - last_change > STALL_TIMEOUT:
                raise L.BenchError('no task finished for %.0f s (%d of %d done)'
                                   % (STALL_TIMEOUT, done, n))
            if now >= next_report:
                log('    %d/%d done' % (done, n))
                next_report = now + 2.0
            time.sleep(POLL)
        cpu1, pids = L.tree_cpu(proc.pid)
        # the last result was stored between the last two polls: take the midpoint
        seconds = (previous_poll + now) / 2 - first
        result = {'seconds': seconds, 'rate': n / seconds, 'cpu_s': cpu1 - cpu0,
                  'cpu_per_task_us': (cpu1 - cpu0) / n * 1e6, 'startup_s': first - launched,
                  'processes': len(pids)}
        if server0 is not None:
            server = L.tree_cpu(REDIS.proc.pid)[0] - server0
            result.update(server_cpu_s=server, server_cpu_per_task_us=server / n * 1e6)
            stored = handle.storage.result_store_size()  # the public count, once, untimed
            if stored != n:
                raise L.BenchError('%d results counted during the drain, but %s says %d'
                                   % (n, type(handle.storage).__name__, stored))
        return result
    except L.BenchError:
        log('  consumer log (%s):\n%s' % (logfile, L.tail(logfile)))
        raise
    finally:
        L.stop_consumer(proc)
        ledger.close()
        close_app(family, handle)
        if REDIS is None:
            for suffix in ('', '-wal', '-shm'):
                with contextlib.suppress(OSError):
                    os.unlink(db + suffix)


# --------------------------------------------------------------------------------- latency

class _LatencyOptions(argparse.Namespace):
    """latency.py's parsed options for run_system: an option it grows later (other than the
    ones set here) reads as None, the usual default of an optional command-line flag."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith('__'):
            raise AttributeError(name)
        return None


def measure_latency(column: str, args: argparse.Namespace, workdir: str,
                    huey_options: List[str]) -> Dict[str, Any]:
    """latency.py's protocol for one consumer (1 thread worker); eta phase reduced to 1 task."""
    family, twin = COLUMNS[column]
    sqlq = system_of(family) == 'sqlq'
    options = ['-w', '1', '-k', 'thread'] if sqlq else list(huey_options)
    ns = _LatencyOptions(n=args.latency_n, warmup=5, idle=args.idle, eta=1,
                         task_timeout=30.0, redis_server=REDIS)  # REDIS: FLUSHALL first
    name = column if sqlq else 'huey ' + (' '.join(huey_options) or 'default')
    with twin_mode(twin):
        result = L.run_system(name, family, options, ns, workdir, random.Random(1))
    if not result['ok']:
        raise L.BenchError('latency (%s): %s' % (name, result.get('error')))
    return result


# ---------------------------------------------------------------------------------- report

def median_of(runs: List[Dict[str, Any]], key: str) -> Optional[float]:
    values = [r[key] for r in runs if key in r]
    return statistics.median(values) if values else None


def row_specs(worker_sets: List[Tuple[int, str]]) -> List[Tuple[str, str, str]]:
    """(key, label, unit kind) of every table row; kind 'rate' (higher is better) or 'cost'."""
    rows = [('enqueue_single', 'enqueue, one call per task (tasks/s)', 'rate'),
            ('enqueue_batch', 'enqueue, batch `map` (tasks/s) ¹', 'rate')]
    for w, k in worker_sets:
        rows.append(('drain_' + workers_key(w, k), 'drain, %d %s worker%s (tasks/s)'
                     % (w, k, '' if w == 1 else 's'), 'rate'))
    for w, k in worker_sets:
        rows.append(('cpu_' + workers_key(w, k), 'consumer CPU per task, %d %s (µs)'
                     % (w, k[0]), 'cost'))
    for w, k in worker_sets:  # --redis only (no figures otherwise: the row is left out)
        rows.append(('server_cpu_' + workers_key(w, k), 'redis-server CPU per task, %d %s '
                     '(µs) ⁴' % (w, k[0]), 'cost'))
    rows += [('latency_p50', 'latency p50, 1 thread (ms) ²', 'cost'),
             ('latency_p99', 'latency p99, 1 thread (ms) ²', 'cost'),
             ('latency_return_p50', 'latency p50 from return, 1 thread (ms) ²', 'cost'),
             ('idle_cpu', 'idle CPU (% of one core) ³', 'cost')]
    return rows


def fmt_value(value: Optional[float], kind: str) -> str:
    if value is None:
        return '—'
    if kind == 'rate':
        return '%.1fk' % (value / 1000) if value < 100000 else '%.0fk' % (value / 1000)
    return L.fmt(value)


def target_cell(key: str, value: Optional[float], figures: Dict[str, Dict[str, float]]) -> str:
    if REDIS is not None:
        return redis_target_cell(key, value, figures)
    if key not in TARGETS:
        return ''
    op, bound, text = TARGETS[key]
    if value is None:
        return text
    ok = meets(value, op, bound)
    if key in ('drain_2p', 'drain_4p'):  # and not slower than 1 worker
        one = figures.get('sqlq', {}).get('drain_1t')
        ok = ok and (one is None or value >= one)
    return '%s %s' % (text, '✓' if ok else '✗')


def redis_target_cell(key: str, value: Optional[float],
                      figures: Dict[str, Dict[str, float]]) -> str:
    """--redis: rates and consumer CPU against huey's figure, latency and idle CPU against
    issue 5's absolute targets; nothing for the redis-server CPU rows."""
    if key in REDIS_ABSOLUTE:
        return target_cell_absolute(key, value)
    prefix = next((p for p in REDIS_VS_HUEY if key.startswith(p)), None)
    if prefix is None:
        return ''
    op, text = REDIS_VS_HUEY[prefix]
    huey = figures.get('huey', {}).get(key)
    if value is None or huey is None:
        return text
    return '%s %s' % (text, '✓' if meets(value, op, huey) else '✗')


def target_cell_absolute(key: str, value: Optional[float]) -> str:
    op, bound, text = TARGETS[key]
    if value is None:
        return text
    return '%s %s' % (text, '✓' if meets(value, op, bound) else '✗')


def meets(value: float, op: str, bound: float) -> bool:
    return value >= bound if op == '>=' else value <= bound


def table(figures: Dict[str, Dict[str, float]], rows: List[Tuple[str, str, str]]) -> str:
    columns = [c for c in COLUMNS if c in figures]
    ratios = [('sqlq / huey', 'sqlq', 'huey'), ('sqlq / twin', 'sqlq', 'sqlq twin')]
    ratios = [r for r in ratios if r[1] in figures and r[2] in figures]
    head = ['figure'] + columns + [r[0] for r in ratios] + ['target (sqlq)']
    lines = ['| ' + ' | '.join(head) + ' |', '|---' + '|---:' * (len(head) - 2) + '|---|']
    for key, label, kind in rows:
        if not any(key in figures[c] for c in columns):
            continue
        cells = [label] + [fmt_value(figures[c].get(key), kind) for c in columns]
        for _, a, b in ratios:
            x, y = figures[a].get(key), figures[b].get(key)
            cells.append(L.fmt_ratio(x / y) if x and y else '—')
        cells.append(target_cell(key, figures.get('sqlq', {}).get(key), figures))
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


#: Limit row -> (sqlq row it bounds, its label, least fraction or None).
LIMIT_OF: Dict[str, Tuple[str, str, Optional[float]]] = {
    'limit_single': ('enqueue_single', 'enqueue, one call per task', 0.80),
    'limit_batch': ('enqueue_batch', 'enqueue, batch `map`', 0.50),
    'limit_claim': ('drain_1t', 'drain, 1 thread worker', 0.60),
    'limit_drain': ('drain_1t', 'drain, 1 thread worker', None),
}


def limits_table(figures: Dict[str, Dict[str, float]]) -> str:
    """Raw apsw's figures beside the sqlq figures they bound (issue 17's targets)."""
    limit, sqlq = figures.get('limit', {}), figures.get('sqlq', {})
    head = ['raw apsw, same file system, same run', 'limit', 'sqlq figure', 'sqlq',
            'sqlq / limit', 'target']
    lines = ['| ' + ' | '.join(head) + ' |', '|---|---:|---|---:|---:|---|']
    for key, (_, label) in LIMIT_ROWS.items():
        if limit.get(key) is None:
            continue
        row, what, least = LIMIT_OF[key]
        value = sqlq.get(row)
        fraction = value / limit[key] if value else None
        target = '' if least is None else '≥ %.0f %%' % (least * 100)
        if target and fraction is not None:
            target += ' ✓' if fraction >= least else ' ✗'
        lines.append('| %s | %s | %s | %s | %s | %s |' % (
            label.replace('raw apsw: ', ''), fmt_value(limit[key], 'rate'), what,
            fmt_value(value, 'rate'), '—' if fraction is None else '%.0f %%' % (fraction * 100),
            target))
    return '\n'.join(lines)


NOTES = """\
Ratios are sqlq ÷ other: above 1× is better for rates (tasks/s), below 1× is better for
costs (µs, ms, %). Drain and enqueue figures are medians of {repeat} run(s); drain time runs
from the first task's start to all N results stored (counted every {poll:.0f} ms; midpoint
of the last two counts), consumer start-up excluded; CPU is the consumer process tree's
utime+stime over that time ÷ N.
huey's consumer runs with `{huey_tuned}` (its polling delay would otherwise cap it); sqlq's
with its defaults; both log at their default level to a file{quiet}.
¹ sqlq `task.map(...)`: one transaction. huey 3.5.4 `TaskWrapper.map(...)` (its only batch
  API) is a loop of single enqueues, one commit each.
² latency.py's protocol: {latency_n} tasks, each enqueued 5–25 ms after the previous one
  started; huey column: consumer `{huey_tuned}` (its best latency). "latency" runs from the
  start of the producer's enqueue call, "from return" from its return (the
  task committed just before).
³ consumer left idle {idle:g} s; huey column: consumer with its defaults (its lowest idle CPU;
  the tuned consumer polls every 10 ms)."""

LIMIT_NOTES = """\
Limits (bench/_limits.py), medians of {repeat} run(s) of N rows each in this process, on fresh
files beside the benchmark's databases, WAL with synchronous=NORMAL, on a table shaped like
sqlq's `task` with its ready index, {size}-byte rows (sqlq's `noop` message):
⁵ one autocommit INSERT per row; ⁶ INSERT of 1000 rows per transaction (executemany);
⁷ one autocommit `DELETE … RETURNING` of the head of the ready index per task (a claim and its
  ack in one commit, as huey's dequeue; no result stored);
⁸ the batched drain's SQL without its Python: per transaction, the previous 64 claims acked
  (DELETE) with their results stored (INSERT into a key/value table), then the next 64 claimed
  (SELECT of the head, UPDATE of the owner)."""

REDIS_NOTES = """\
Ratios are sqlq ÷ other: above 1× is better for rates (tasks/s), below 1× is better for
costs (µs, ms, %). sqlq: `RedisQueue`, huey: `RedisHuey`, both on one redis-server {redis}
started for the run (127.0.0.1 TCP, no persistence), emptied (FLUSHALL) before every
measurement. Drain and enqueue figures are medians of {repeat} run(s); before each drain the N
tasks are enqueued afresh (sqlq `noop.map` in chunks of {chunk}; huey: its serialized messages,
one multi-value LPUSH per chunk of {chunk}), then the consumer is started; drain time runs from
the first task's start to all N results stored (counted every {poll:.0f} ms; midpoint of the
last two counts), consumer start-up excluded; CPU is the consumer process tree's utime+stime
over that time ÷ N. huey's consumer runs with `{huey_tuned}`; sqlq's with its defaults; both
log at their default level to a file{quiet}.
Target column: issue 5's rate and CPU targets were set for SQLite; here sqlq is held against
huey in the same run (≥ huey for rates, ≤ huey for consumer CPU), latency and idle CPU against
the same absolute targets as on SQLite.
¹ sqlq `task.map(...)`: one call of its server-side enqueue function. huey 3.5.4
  `TaskWrapper.map(...)` (its only batch API) is a loop of single enqueues, one LPUSH round
  trip each.
² latency.py's protocol: {latency_n} tasks, each enqueued 5–25 ms after the previous one
  started; huey column: consumer `{huey_tuned}`. "latency" runs from the start of the
  producer's enqueue call, "from return" from its return (the
  task committed just before).
³ consumer left idle {idle:g} s; huey column: consumer with its defaults (it blocks in BRPOP
  for 1 s, then sleeps 0.1 s growing ×1.15 up to 10 s); the redis-server's own idle CPU is not
  counted.
⁴ utime+stime of the redis-server over the drain ÷ N (the work of sqlq's server-side functions
  or huey's list/hash commands; includes the bench's result count every {poll:.0f} ms)."""


# ------------------------------------------------------------------------------------ main

def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description='sqlq vs huey SqliteHuey in one run: enqueue, drain, CPU per task, '
                    'latency, idle CPU; one table with ratios and the issue-5 targets.')
    parser.add_argument('-n', '--tasks', type=int, default=None,
                        help='tasks per enqueue/drain measurement (default 20000; quick 2000)')
    parser.add_argument('--workers', type=parse_workers, default=None,
                        help='drain worker sets, e.g. 1t,2p,4p (the default): count + '
                             't(hread)/p(rocess)')
    parser.add_argument('--repeat', type=int, default=None,
                        help='runs per figure, the median is shown (default 3; quick 1)')
    parser.add_argument('--quick', action='store_true',
                        help='CI mode: N=2000, 1 repeat, latency 20 tasks, 2 s idle (< 60 s)')
    parser.add_argument('--only', choices=('sqlq', 'huey'), default=None,
                        help='measure one system only')
    parser.add_argument('--no-twin', action='store_true',
                        help='skip the "sqlq twin" column (SQLQ_NO_EXTENSIONS=1)')
    parser.add_argument('--skip', default='',
                        help='comma-separated parts to skip: enqueue, drain, latency, limits '
                             '(raw apsw on the same file system)')
    parser.add_argument('--latency-n', type=int, default=None,
                        help='tasks per latency phase (default 300; quick 20)')
    parser.add_argument('--idle', type=float, default=None,
                        help='seconds of idle consumer for idle CPU (default 30; quick 2)')
    parser.add_argument('--quiet-consumers', action='store_true',
                        help='run both consumers with -q (no per-task log lines)')
    parser.add_argument('--drain-timeout', type=float, default=None,
                        help='longest drain, seconds, before the run fails '
                             '(default max(60, N/200))')
    parser.add_argument('--json', metavar='PATH', default=None,
                        help='also write every run and the environment to PATH as JSON')
    parser.add_argument('--sqlq-src', metavar='DIR', default=None,
                        help='measure the sqlq package in DIR (a checkout with the extension '
                             'built in place) instead of this tree')
    parser.add_argument('--redis', action='store_true',
                        help="RedisQueue vs huey's RedisHuey instead, on a redis-server "
                             'started for the run (redis-server on PATH, redis-py installed)')
    parser.add_argument('--child-enqueue', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.sqlq_src:
        L.ROOT = os.path.abspath(args.sqlq_src)
        if not os.path.isfile(os.path.join(L.ROOT, 'sqlq', '__init__.py')):
            parser.error('--sqlq-src %s has no sqlq/__init__.py' % args.sqlq_src)
    if args.child_enqueue:
        return child_enqueue(args.child_enqueue)

    n = args.tasks if args.tasks is not None else (2000 if args.quick else 20000)
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 3)
    worker_sets = args.workers or [(1, 'thread'), (2, 'process'), (4, 'process')]
    args.latency_n = args.latency_n if args.latency_n is not None else (
        20 if args.quick else 300)
    args.idle = args.idle if args.idle is not None else (2.0 if args.quick else 30.0)
    args.drain_timeout = args.drain_timeout or max(60.0, n / 200.0)
    skip = {s.strip() for s in args.skip.split(',') if s.strip()}
    if skip - {'enqueue', 'drain', 'latency', 'limits'}:
        parser.error('--skip takes enqueue, drain, latency, limits')
    if n < 1 or repeat < 1 or args.latency_n < 1 or args.idle <= 0:
        parser.error('-n, --repeat and --latency-n must be positive, --idle > 0')
    if not sys.platform.startswith('linux'):
        parser.error('needs Linux (/proc for CPU time, system-wide CLOCK_MONOTONIC)')

    if L.ROOT not in sys.path:
        sys.path.insert(0, L.ROOT)
    global COLUMNS, REDIS
    if args.redis:
        COLUMNS = REDIS_COLUMNS
    columns = [c for c, (family, twin) in COLUMNS.items()
               if args.only in (None, system_of(family)) and not (twin and args.no_twin)]
    if importlib.util.find_spec('huey') is None:
        if args.only == 'huey':
            parser.error("huey is not installed: pip install -e '.[bench]'")
        log("huey is not installed (pip install -e '.[bench]'): measuring sqlq only")
        columns = [c for c in columns if system_of(COLUMNS[c][0]) != 'huey']
    if 'sqlq twin' in columns:
        from sqlq import _accel
        if not _accel.compiled_available():
            log('compiled sqlq._fastpath unavailable (%s): the "sqlq" column runs the twin too'
                % _accel.compiled_import_error())

    env = L.environment()
    if not args.redis:
        log('sqlq %s (%s), Python %s, SQLite %s (apsw) / %s (stdlib, huey), huey %s, %s × %s; '
            'N=%d, %d repeat(s), workers %s'
            % (env.get('sqlq'), env.get('sqlq_commit'), env['python'], env.get('sqlite_apsw'),
               env['sqlite_stdlib'], env.get('huey', '—'), env['cpus'], env['cpu'], n, repeat,
               ','.join(workers_key(w, k) for w, k in worker_sets)))

    env['probe_before'] = L.machine_probe()
    runs: Dict[str, Dict[str, List[Dict[str, Any]]]] = {c: {} for c in columns}
    latency: Dict[str, Dict[str, Any]] = {}
    limits: Dict[str, List[Dict[str, Any]]] = {}
    workdir = tempfile.mkdtemp(prefix='sqlq-compare-')
    began = time.monotonic()
    failed: Optional[str] = None

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt
    previous_term = signal.signal(signal.SIGTERM, on_term)
    try:
        if args.redis:
            try:
                REDIS = L.BenchRedis(workdir)  # stopped in the finally below
            except L.BenchError as exc:
                print('compare.py: %s' % exc, file=sys.stderr)
                return 2
            write_redis_apps(workdir)
            import redis
            env['redis_server'] = REDIS.version
            env['redis_py'] = redis.__version__
            log('sqlq %s (%s), Python %s, redis-server %s on 127.0.0.1:%d (no persistence), '
                'redis-py %s, huey %s, %s × %s; N=%d, %d repeat(s), workers %s'
                % (env.get('sqlq'), env.get('sqlq_commit'), env['python'], REDIS.version,
                   REDIS.port, env['redis_py'], env.get('huey', '—'), env['cpus'], env['cpu'],
                   n, repeat, ','.join(workers_key(w, k) for w, k in worker_sets)))
        if 'limits' not in skip and REDIS is None:
            for run in range(repeat):
                for key, (function, label) in LIMIT_ROWS.items():
                    r = getattr(_limits, function)(workdir, n)
                    limits.setdefault(key, []).append(r)
                    log('%s, run %d/%d: %.0f/s' % (label.split(' (')[0], run + 1, repeat,
                                                   r['rate']))
        if 'enqueue' not in skip:
            for mode in ('single', 'batch'):
                for run in range(repeat):
                    for column in columns:
                        r = measure_enqueue(column, mode, n, workdir, run,
                                            timeout=max(120.0, n / 100.0))
                        runs[column].setdefault('enqueue_' + mode, []).append(r)
                        log('enqueue %s, %s, run %d/%d: %.0f tasks/s'
                            % (mode, column, run + 1, repeat, r['rate']))
        if 'drain' not in skip:
            templates: Dict[str, Optional[str]] = {  # --redis: filled afresh per drain
                family: None if REDIS is not None else make_template(family, n, workdir)
                for family in {COLUMNS[c][0] for c in columns}}
            for w, k in worker_sets:
                key = workers_key(w, k)
                for run in range(repeat):
                    for column in columns:
                        log('drain %d×%s, %s, run %d/%d' % (w, k, column, run + 1, repeat))
                        r = measure_drain(column, w, k, n, templates[COLUMNS[column][0]],
                                          workdir, run, args)
                        runs[column].setdefault('drain_' + key, []).append(r)
                        log('  %.0f tasks/s, %.1f µs CPU/task (%d processes, started in '
                            '%.2f s)%s' % (r['rate'], r['cpu_per_task_us'], r['processes'],
                                           r['startup_s'],
                                           '; redis-server %.1f µs/task'
                                           % r['server_cpu_per_task_us']
                                           if 'server_cpu_per_task_us' in r else ''))
        if 'latency' not in skip:
            for column in columns:
                if system_of(COLUMNS[column][0]) == 'huey':
                    latency['huey tuned'] = measure_latency(column, args, workdir, HUEY_TUNED)
                    latency['huey default'] = measure_latency(column, args, workdir, [])
                else:
                    latency[column] = measure_latency(column, args, workdir, [])
    except L.BenchError as exc:
        failed = str(exc)
        log('FAILED: %s' % exc)
    except KeyboardInterrupt:
        log('interrupted')
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        if REDIS is not None:
            REDIS.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - began

    figures: Dict[str, Dict[str, float]] = {c: {} for c in columns}
    figures['limit'] = {key: median_of(rs, 'rate') for key, rs in limits.items()}
    for column in columns:
        for key, rs in runs[column].items():
            if key.startswith('drain_'):
                figures[column][key] = median_of(rs, 'rate')
                figures[column]['cpu_' + key[len('drain_'):]] = median_of(rs, 'cpu_per_task_us')
                server = median_of(rs, 'server_cpu_per_task_us')  # --redis only
                if server is not None:
                    figures[column]['server_cpu_' + key[len('drain_'):]] = server
            else:
                figures[column][key] = median_of(rs, 'rate')
        source = {'huey': ('huey tuned', 'huey default')}.get(column, (column, column))
        if source[0] in latency:
            figures[column]['latency_p50'] = latency[source[0]]['latency']['p50']
            figures[column]['latency_p99'] = latency[source[0]]['latency']['p99']
            figures[column]['latency_return_p50'] = \
                latency[source[0]]['latency_from_return']['p50']
        if source[1] in latency:
            figures[column]['idle_cpu'] = latency[source[1]]['idle']['cpu_percent']

    print()
    if REDIS is not None:
        print('sqlq RedisQueue vs huey RedisHuey — %s; N=%d, %d repeat(s); %s × %d; Python %s; '
              'redis-server %s (127.0.0.1, no persistence), redis-py %s; huey %s; sqlq %s '
              '(%s); %.0f s'
              % (env['date'], n, repeat, env['cpu'], env['cpus'], env['python'],
                 env['redis_server'], env['redis_py'], env.get('huey', '—'), env.get('sqlq'),
                 env.get('sqlq_commit'), elapsed))
    else:
        print('sqlq vs huey — %s; N=%d, %d repeat(s); %s × %d; Python %s; SQLite %s (apsw, '
              'sqlq), %s (stdlib, huey); huey %s; sqlq %s (%s); %.0f s'
              % (env['date'], n, repeat, env['cpu'], env['cpus'], env['python'],
                 env.get('sqlite_apsw'), env['sqlite_stdlib'], env.get('huey', '—'),
                 env.get('sqlq'), env.get('sqlq_commit'), elapsed))
    env['probe_after'] = L.machine_probe()
    print(L.describe_probe(env['probe_before'], env['probe_after']))
    print()
    print(table(figures, row_specs(worker_sets)))
    print()
    if figures.get('limit'):
        print(limits_table(figures))
        print()
    notes = REDIS_NOTES if REDIS is not None else NOTES
    print(notes.format(repeat=repeat, poll=POLL * 1000, huey_tuned=' '.join(HUEY_TUNED),
                       latency_n=args.latency_n, idle=args.idle,
                       quiet=' (`-q`: no per-task lines)' if args.quiet_consumers else '',
                       redis=env.get('redis_server'), chunk=FILL_CHUNK),
          flush=True)
    if figures.get('limit'):
        print()
        print(LIMIT_NOTES.format(repeat=repeat, size=_limits.NOOP_MESSAGE_SIZE), flush=True)
    if failed:
        print('\nFAILED: %s' % failed)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'environment': env, 'options': {
                'n': n, 'repeat': repeat, 'workers': [workers_key(w, k) for w, k in worker_sets],
                'latency_n': args.latency_n, 'idle': args.idle,
                'quiet_consumers': args.quiet_consumers, 'argv': sys.argv[1:],
                **({'redis': True} if args.redis else {})},
                'elapsed_s': elapsed, 'figures': figures, 'runs': runs, 'latency': latency,
                'limits': limits,
                'failed': failed}, f, indent=2)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
