#!/usr/bin/env python3
"""How large the SQLite write-ahead log (``<db>-wal``) grows under sustained work, sqlq next
to huey's SqliteHuey, and how long another producer's write waits meanwhile.

    python bench/wal.py                                  # drain 1M + mixed 100k, sqlq and huey
    python bench/wal.py --scenario drain -n 100000 --only sqlq
    python bench/wal.py --scenario drain -n 200000 --kill-at 0.5     # + reopen after kill -9
    python bench/wal.py --sqlq-src /tmp/old-tree --only sqlq         # another sqlq tree

Scenarios (each on a fresh database in a temp dir, the real consumer command):

- **drain**: N no-op tasks (compare.py's ``bench.noop``) pre-filled, then
  ``python -m sqlq consume sqlq_app.queue -w W -k K -q`` (huey: its consumer tuned with
  ``-d 0.001 -m 0.01``) until all N results are stored.
- **mixed**: the consumer starts on an empty database while ``--producers`` subprocesses
  enqueue N tasks between them: 7 in 10 calls one ``noop(i)`` each, 1 in 10 a ``noop.map`` of
  10, 1 in 10 ``noop.schedule((i,), delay=0.2-1 s)``, and 1 in 10 a read (``pending_count()``);
  it ends when all N results are stored.

Measured during each run:

- **WAL size**, ``os.stat(<db>-wal).st_size`` every 100 ms (``--sample``) from a thread of
  the bench process: max, median, and the size at the end; the database file's size at the
  end;
- **probe write** (ms): another producer -- a thread of the bench process with its own
  connection -- writes one key (``queue.put('wal-probe', i)``) every 10 ms; the time each call
  takes: p50, p99, p99.9, max. This is what a checkpoint that holds the write lock makes a
  writer wait (besides the workers' own commits);
- **drain**: seconds and tasks/s from the first result to the last (polled every second: a
  rough figure, use compare.py for throughput).

``--kill-at F`` (drain): when F·N results are stored (or, with ``--kill-at-wal MB``, once the
WAL is that large), note the WAL size, SIGKILL the consumer's process group, then time (in a
fresh subprocess, imports done) opening the queue -- its first read replays the WAL left
behind -- and its first enqueue.

Progress goes to stderr, one markdown table to stdout; ``--json PATH`` keeps every sample.
Exit status 1 if a consumer fails or stalls, 2 on bad usage.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.util
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
import compare as C  # noqa: E402  (bench/compare.py: template fill, app handles)
import latency as L  # noqa: E402  (bench/latency.py: consumers, /proc, stats)

SAMPLE = 0.1          # seconds between two WAL size samples
PROBE_EVERY = 0.01    # seconds between two probe writes
RESULT_POLL = 1.0     # seconds between two result counts (each one a long read)
STALL = 60.0          # a run fails if no result is stored for this long
MB = 1024.0 * 1024.0


def file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


class Sampler(threading.Thread):
    """Samples the WAL's size every ``interval`` seconds until stopped."""

    def __init__(self, db: str, interval: float) -> None:
        super().__init__(daemon=True, name='wal-sampler')
        self.wal = db + '-wal'
        self.interval = interval
        self.samples: List[int] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.samples.append(file_size(self.wal))
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()
        if self.is_alive():
            self.join(5)


class Prober(threading.Thread):
    """Another producer: one small write every PROBE_EVERY seconds, each one timed."""

    def __init__(self, family: str, db: str, no_autocheckpoint: bool = False) -> None:
        super().__init__(daemon=True, name='wal-prober')
        self.no_autocheckpoint = no_autocheckpoint
        self.family = family
        self.db = db
        self.times: List[float] = []
        self.errors: List[str] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        handle, _ = C.open_app(self.family, self.db)
        if self.no_autocheckpoint and self.family == 'sqlq':
            handle.storage.defer_checkpoints(True)  # its commits never checkpoint
        try:
            i = 0
            while not self.stopped.is_set():
                t0 = time.perf_counter()
                try:
                    handle.put('wal-probe', i)
                except Exception as exc:  # reported, not fatal: a locked write is a result
                    self.errors.append('%s: %s' % (type(exc).__name__, exc))
                self.times.append(time.perf_counter() - t0)
                i += 1
                self.stopped.wait(PROBE_EVERY)
        finally:
            C.close_app(self.family, handle)

    def stop(self) -> None:
        self.stopped.set()
        if self.is_alive():
            self.join(10)


def child_produce(spec: str) -> int:
    """In a producer subprocess (mixed scenario): ``family,db,first,count,seed``."""
    family, db, first_text, count_text, seed_text = spec.split(',')
    first, count = int(first_text), int(count_text)
    rng = random.Random(int(seed_text))
    handle, noop = C.open_app(family, db)
    made = 0
    i = first
    while made < count:
        kind = rng.randrange(10)
        if kind == 8 and count - made >= 10:
            noop.map(range(i, i + 10))
            made += 10
            i += 10
            continue
        if kind == 9:
            handle.pending_count()
        if kind == 7:
            noop.schedule((i,), delay=rng.uniform(0.2, 1.0))
        else:
            noop(i)
        made += 1
        i += 1
    C.close_app(family, handle)
    return 0


def start_producers(family: str, db: str, n: int, producers: int,
                    workdir: str) -> List[subprocess.Popen]:
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        L.app_paths() + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
    procs = []
    share = n // producers
    for p in range(producers):
        count = share if p < producers - 1 else n - share * (producers - 1)
        spec = '%s,%s,%d,%d,%d' % (family, db, p * share, count, p)
        cmd = [sys.executable, os.path.abspath(__file__), '--child-produce', spec,
               '--sqlq-src', L.ROOT]
        err = open(os.path.join(workdir, 'producer-%d.err' % p), 'wb')
        procs.append(subprocess.Popen(cmd, cwd=L.APPS, env=env, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=err,
                                      start_new_session=True))
        err.close()
    return procs


def reopen_after_kill(family: str, db: str) -> Dict[str, float]:
    """Seconds to open the queue (the first statement replays the WAL) and to enqueue once,
    in a fresh process."""
    code = ('import sys, time, json, importlib; sys.path[:0] = %r\n'
            'import compare as C\n'
            'import latency as L\n'
            'importlib.import_module(L.FAMILIES[%r][0])\n'  # imports done: not timed
            't1 = time.perf_counter()\n'
            'handle, noop = C.open_app(%r, %r)\n'
            'handle.pending_count()\n'
            't2 = time.perf_counter()\n'
            'noop(-1)\n'
            't3 = time.perf_counter()\n'
            'print(json.dumps({"open_s": t2 - t1, "first_enqueue_s": t3 - t2}))\n'
            % ([HERE] + L.app_paths(), family, family, db))
    out = subprocess.run([sys.executable, '-c', code], cwd=L.APPS, capture_output=True,
                         text=True, timeout=120)
    if out.returncode:
        raise L.BenchError('reopening after kill -9 failed:\n%s' % out.stderr[-2000:])
    result: Dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(family: str, scenario: str, n: int, workers: int, kind: str,
        args: argparse.Namespace, workdir: str, template: Optional[str]) -> Dict[str, Any]:
    slug = '%s-%s-%d' % (family, scenario, n)
    db = os.path.join(workdir, slug + '.db')
    logfile = os.path.join(workdir, slug + '.log')
    if template is not None:
        C.copy_db(template, db)
    handle, noop = C.open_app(family, db)
    ledger = L.Ledger(os.path.join(workdir, slug + '.sock'))
    sampler = Sampler(db, args.sample)
    prober = Prober(family, db, args.probe_no_autocheckpoint)
    producers: List[subprocess.Popen] = []
    options = C.consumer_options(family, workers, kind, quiet=True)
    if family == 'sqlq' and args.trace_checkpoints:
        options = [o if o != '-q' else '-v' for o in options]
    trace_dir = None
    if family == 'sqlq' and args.strace:
        trace_dir = os.path.join(workdir, slug + '-strace')
        os.mkdir(trace_dir)
        consumer_command = L.consumer_command
        L.consumer_command = lambda f, o: [  # type: ignore[assignment]
            'strace', '-ff', '-tt', '-T', '--seccomp-bpf', '-e',
            'trace=fcntl,fdatasync,fsync', '-o', os.path.join(trace_dir, 'tr')
        ] + consumer_command(f, o)
        try:
            proc = L.start_consumer(family, options, db, ledger.path, logfile)
        finally:
            L.consumer_command = consumer_command  # type: ignore[assignment]
    else:
        proc = L.start_consumer(family, options, db, ledger.path, logfile)
    result: Dict[str, Any] = {'family': family, 'scenario': scenario, 'n': n,
                              'workers': C.workers_key(workers, kind)}
    try:
        target = n
        if scenario == 'mixed':  # one task first: the consumer is up once it has run
            noop(-1)
            ledger.wait('first', L.START_TIMEOUT, proc)
            target = n + 1
        sampler.start()
        prober.start()
        began = time.monotonic()
        if scenario == 'mixed':
            producers = start_producers(family, db, n, args.producers, workdir)
        last_done, last_change, next_report = -1, time.monotonic(), time.monotonic() + 5
        first_done: Optional[float] = None
        while True:
            done = C.result_count(family, handle)
            now = time.monotonic()
            if done and first_done is None:
                first_done = now
            if done >= target:
                break
            big_wal = args.kill_at_wal is not None and sampler.samples and \
                sampler.samples[-1] >= args.kill_at_wal * MB
            if (args.kill_at and done >= args.kill_at * n) or big_wal:
                result['killed_at'] = done
                result['wal_at_kill_mb'] = file_size(db + '-wal') / MB
                C.kill_group(proc)
                break
            if proc.poll() is not None:
                raise L.BenchError('consumer exited (%s) after %d of %d tasks'
                                   % (proc.returncode, done, n))
            for index, p in enumerate(producers):
                if p.poll() not in (None, 0):
                    raise L.BenchError('a producer failed (exit %s):\n%s' % (
                        p.returncode, L.tail(os.path.join(workdir, 'producer-%d.err' % index))))
            if done != last_done:
                last_done, last_change = done, now
            elif now - last_change > STALL:
                raise L.BenchError('no task finished for %.0f s (%d of %d done)'
                                   % (STALL, done, n))
            if now >= next_report:
                L.log('    %d/%d done, WAL %.1f MB (max so far %.1f MB)'
                      % (done, n, sampler.samples[-1] / MB if sampler.samples else 0,
                         max(sampler.samples, default=0) / MB))
                next_report = now + 5
            time.sleep(RESULT_POLL)
        end = time.monotonic()
        fields = L._stat(proc.pid)  # the consumer process alone: its loop, checkpoints...
        consumer_cpu = (int(fields[11]) + int(fields[12])) / L.CLK_TCK if fields else None
        tree_cpu = L.tree_cpu(proc.pid)[0]
        prober.stop()
        sampler.stop()
        samples = sampler.samples
        result.update(
            seconds=end - began, consumer_cpu_s=consumer_cpu, tree_cpu_s=tree_cpu,
            rate=n / (end - (first_done or began)) if 'killed_at' not in result else None,
            wal_max_mb=max(samples) / MB, wal_p50_mb=statistics.median(samples) / MB,
            wal_end_mb=file_size(db + '-wal') / MB, db_end_mb=file_size(db) / MB,
            samples=len(samples), wal_samples=samples,
            probe_n=len(prober.times), probe_errors=prober.errors[:5],
            probe_p50_ms=L.percentile(prober.times, 50) * 1e3,
            probe_p99_ms=L.percentile(prober.times, 99) * 1e3,
            probe_p999_ms=L.percentile(prober.times, 99.9) * 1e3,
            probe_max_ms=max(prober.times) * 1e3)
        if family == 'sqlq' and args.trace_checkpoints:
            result.update(rewinds(logfile))
        if trace_dir is not None:  # stop the consumer (not strace): SIGINT to the group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(L.STOP_TIMEOUT)
            result.update(lock_holds(trace_dir))
        if 'killed_at' in result:
            C.close_app(family, handle)
            handle = None
            result.update(reopen_after_kill(family, db))
        return result
    except L.BenchError:
        L.log('  consumer log (%s):\n%s' % (logfile, L.tail(logfile)))
        raise
    finally:
        try:
            prober.stop()
            sampler.stop()
            for p in producers:
                C.kill_group(p)
        finally:
            L.stop_consumer(proc)  # whatever happened above
        ledger.close()
        if handle is not None:
            C.close_app(family, handle)
        for suffix in ('', '-wal', '-shm'):
            with contextlib.suppress(OSError):
                os.unlink(db + suffix)


def rewinds(logfile: str) -> Dict[str, Any]:
    """The consumer's ``checkpoint: {...}`` debug lines (one per RESTART checkpoint tried):
    how many, how many rewound the WAL, and how long they took (the longest a writer can have
    waited behind one)."""
    tried = []
    with open(logfile, errors='replace') as f:
        for line in f:
            at = line.find('checkpoint: {')
            if at >= 0:
                tried.append(ast.literal_eval(line[at + len('checkpoint: '):].strip()))
    seconds = [t['rewind_seconds'] for t in tried]
    if not seconds:
        return {'rewinds_tried': 0}
    return {'rewinds_tried': len(tried), 'rewound': sum(1 for t in tried if t['rewound']),
            'rewind_p50_ms': L.percentile(seconds, 50) * 1e3,
            'rewind_p99_ms': L.percentile(seconds, 99) * 1e3,
            'rewind_max_ms': max(seconds) * 1e3, 'rewind_list': tried}


_FCNTL = re.compile(r'^(\d+):(\d+):([\d.]+) fcntl\(\d+, F_SETLKW?, \{l_type=(F_\w+), '
                    r'l_whence=SEEK_SET, l_start=(\d+), l_len=(\d+)\}\) = (-?\d+)')
_SYNC = re.compile(r'^(\d+):(\d+):([\d.]+) f(?:data)?sync\(\d+\)\s+= 0 <([\d.]+)>')
#: Offsets of SQLite's WAL locks in the -shm file (unix VFS): the write lock, the checkpoint
#: lock (the read locks follow).
_WRITE_LOCK, _CKPT_LOCK = 120, 121


def lock_holds(trace_dir: str) -> Dict[str, Any]:
    """From ``strace -ff`` files of the consumer and its workers: how long each thread held
    SQLite's WAL write lock at a time (F_WRLCK on byte 120 of the -shm file until its
    F_UNLCK), split into the holds taken while the same thread held the checkpoint lock
    (byte 121: the consumer's RESTART/TRUNCATE checkpoints) and all others (commits); and
    the fsyncs made during the checkpoints' holds."""
    ckpt_holds: List[float] = []
    other_holds: List[float] = []
    ckpt_syncs: List[float] = []
    for name in sorted(os.listdir(trace_dir)):
        held: Optional[float] = None
        by_checkpoint = in_checkpoint = False
        with open(os.path.join(trace_dir, name), errors='replace') as f:
            for line in f:
                m = _FCNTL.match(line)
                if m is None:
                    s = _SYNC.match(line)
                    if s is not None and held is not None and by_checkpoint:
                        ckpt_syncs.append(float(s.group(4)))
                    continue
                t = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
                kind, start, length, rc = m.group(4), int(m.group(5)), int(m.group(6)), \
                    int(m.group(7))
                if start >= 1 << 30:  # the database file's own locks
                    continue
                write_lock = start <= _WRITE_LOCK < start + length
                ckpt_lock = start <= _CKPT_LOCK < start + length
                if kind == 'F_WRLCK' and rc == 0 and ckpt_lock:
                    in_checkpoint = True
                if kind == 'F_WRLCK' and rc == 0 and write_lock:
                    held, by_checkpoint = t, in_checkpoint
                elif kind == 'F_UNLCK' and write_lock and held is not None:
                    (ckpt_holds if by_checkpoint else other_holds).append(t - held)
                    held = None
                if kind == 'F_UNLCK' and ckpt_lock:
                    in_checkpoint = False
    out: Dict[str, Any] = {'ckpt_holds': len(ckpt_holds), 'commit_holds': len(other_holds)}
    for key, values in (('ckpt_hold', ckpt_holds), ('commit_hold', other_holds),
                        ('ckpt_fsync', ckpt_syncs)):
        if values:
            out.update({key + '_p50_ms': L.percentile(values, 50) * 1e3,
                        key + '_p99_ms': L.percentile(values, 99) * 1e3,
                        key + '_max_ms': max(values) * 1e3})
    return out


ROWS = [
    ('seconds', 'run (s)', '%.1f'),
    ('rate', 'tasks/s (rough)', '%.0f'),
    ('tree_cpu_s', 'CPU of the consumer and its workers (s)', '%.1f'),
    ('consumer_cpu_s', '... of the consumer process (s)', '%.2f'),
    ('wal_max_mb', 'WAL max (MB)', '%.1f'),
    ('wal_p50_mb', 'WAL median (MB)', '%.1f'),
    ('wal_end_mb', 'WAL at end (MB)', '%.1f'),
    ('db_end_mb', 'database at end (MB)', '%.1f'),
    ('probe_p50_ms', 'probe write p50 (ms)', '%.2f'),
    ('probe_p99_ms', 'probe write p99 (ms)', '%.2f'),
    ('probe_p999_ms', 'probe write p99.9 (ms)', '%.2f'),
    ('probe_max_ms', 'probe write max (ms)', '%.1f'),
    ('rewinds_tried', 'RESTART checkpoints tried', '%d'),
    ('rewound', '... that rewound the WAL', '%d'),
    ('rewind_p50_ms', 'RESTART checkpoint p50 (ms)', '%.2f'),
    ('rewind_p99_ms', 'RESTART checkpoint p99 (ms)', '%.2f'),
    ('rewind_max_ms', 'RESTART checkpoint max (ms)', '%.2f'),
    ('ckpt_holds', 'write lock taken by checkpoints (strace)', '%d'),
    ('ckpt_hold_p50_ms', '... held p50 (ms)', '%.2f'),
    ('ckpt_hold_p99_ms', '... held p99 (ms)', '%.2f'),
    ('ckpt_hold_max_ms', '... held max (ms)', '%.2f'),
    ('ckpt_fsync_p50_ms', '... of which one fsync, p50 (ms)', '%.2f'),
    ('ckpt_fsync_max_ms', '... of which one fsync, max (ms)', '%.2f'),
    ('commit_hold_p50_ms', 'write lock held by a commit, p50 (ms)', '%.2f'),
    ('commit_hold_p99_ms', 'write lock held by a commit, p99 (ms)', '%.2f'),
    ('commit_hold_max_ms', 'write lock held by a commit, max (ms)', '%.2f'),
    ('wal_at_kill_mb', 'WAL at kill -9 (MB)', '%.1f'),
    ('open_s', 'reopen after kill (s)', '%.3f'),
    ('first_enqueue_s', 'first enqueue after (s)', '%.3f'),
]


def table(results: List[Dict[str, Any]]) -> str:
    heads = ['%s %s %s n=%d' % (r['family'], r['scenario'], r['workers'], r['n'])
             for r in results]
    lines = ['| figure | ' + ' | '.join(heads) + ' |',
             '|---|' + '---:|' * len(results)]
    for key, label, fmt in ROWS:
        if not any(r.get(key) is not None for r in results):
            continue
        cells = [fmt % r[key] if r.get(key) is not None else '—' for r in results]
        lines.append('| %s | %s |' % (label, ' | '.join(cells)))
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description='WAL size under sustained work, sqlq vs huey')
    parser.add_argument('--scenario', choices=('drain', 'mixed', 'both'), default='both')
    parser.add_argument('-n', '--tasks', type=int, default=None,
                        help='tasks (default: drain 1000000, mixed 100000)')
    parser.add_argument('--workers', type=C.parse_workers, default=[(4, 'process')],
                        help='consumer workers, e.g. 4p (default) or 1t')
    parser.add_argument('--producers', type=int, default=2, help='mixed: producer processes')
    parser.add_argument('--only', choices=('sqlq', 'huey'), default=None)
    parser.add_argument('--sample', type=float, default=SAMPLE,
                        help='seconds between WAL samples (default 0.1)')
    parser.add_argument('--kill-at', type=float, default=None,
                        help='drain: kill -9 the consumer at this fraction, time the reopen')
    parser.add_argument('--kill-at-wal', type=float, default=None, metavar='MB',
                        help='drain: kill -9 the consumer once the WAL is this large (or at '
                             '--kill-at, whichever comes first), time the reopen')
    parser.add_argument('--trace-checkpoints', action='store_true',
                        help="run sqlq's consumer with -v and report its RESTART checkpoints "
                             '(debug lines; the per-task log lines slow the drain)')
    parser.add_argument('--probe-no-autocheckpoint', action='store_true',
                        help="sqlq: the probe's commits never run SQLite's auto-checkpoint "
                             '(so its times show only waits for other connections)')
    parser.add_argument('--strace', action='store_true',
                        help="run sqlq's consumer under strace -ff and report how long its "
                             'checkpoints held the write lock (slows the drain)')
    parser.add_argument('--json', metavar='PATH', default=None)
    parser.add_argument('--sqlq-src', metavar='DIR', default=None,
                        help='measure the sqlq package in DIR instead of this tree')
    parser.add_argument('--child-produce', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sqlq_src:
        L.ROOT = os.path.abspath(args.sqlq_src)
        if not os.path.isfile(os.path.join(L.ROOT, 'sqlq', '__init__.py')):
            parser.error('--sqlq-src %s has no sqlq/__init__.py' % args.sqlq_src)
    if L.ROOT not in sys.path:
        sys.path.insert(0, L.ROOT)
    if args.child_produce:
        return child_produce(args.child_produce)
    families = [f for f in ('sqlq', 'huey') if args.only in (None, f)]
    if 'huey' in families and importlib.util.find_spec('huey') is None:
        L.log("huey is not installed (pip install -e '.[bench]'): measuring sqlq only")
        families.remove('huey')
    if not families:
        parser.error('nothing to measure')
    scenarios = ['drain', 'mixed'] if args.scenario == 'both' else [args.scenario]
    workers, kind = args.workers[0]
    env = L.environment()
    L.log('sqlq %s (%s), SQLite %s (apsw) / %s (stdlib, huey), huey %s; workers %s'
          % (env.get('sqlq'), env.get('sqlq_commit'), env.get('sqlite_apsw'),
             env['sqlite_stdlib'], env.get('huey', '—'), C.workers_key(workers, kind)))
    workdir = tempfile.mkdtemp(prefix='sqlq-wal-')
    results = []
    try:
        for scenario in scenarios:
            n = args.tasks or (1000000 if scenario == 'drain' else 100000)
            for family in families:
                template = C.make_template(family, n, workdir) if scenario == 'drain' else None
                L.log('%s %s: %d tasks, workers %s' % (family, scenario, n,
                                                      C.workers_key(workers, kind)))
                try:
                    result = run(family, scenario, n, workers, kind, args, workdir, template)
                finally:
                    if template:
                        for suffix in ('', '-wal', '-shm'):
                            with contextlib.suppress(OSError):
                                os.unlink(template + suffix)
                L.log('  WAL max %.1f MB, probe write max %.1f ms, %.1f s'
                      % (result['wal_max_mb'], result['probe_max_ms'], result['seconds']))
                results.append(result)
    except L.BenchError as exc:
        print(table(results) if results else '', flush=True)
        print('FAILED: %s' % exc, file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print('WAL size under sustained work — %s; sqlq %s (%s); SQLite %s; WAL sampled every '
          '%g s\n' % (time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), env.get('sqlq'),
                      env.get('sqlq_commit'), env.get('sqlite_apsw'), args.sample))
    print(table(results))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'results': results, 'environment': env, 'options': vars(args)}, f,
                      indent=1, default=str)
    return 0


if __name__ == '__main__':
    sys.exit(main())
