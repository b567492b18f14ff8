#!/usr/bin/env python3
"""Enqueue→start latency, idle CPU and eta precision of sqlq's consumer, next to huey's
SqliteHuey measured in the same run on the same machine.

For each system (sqlq ``-w 1 -k thread``, sqlq ``-w 1 -k process``, huey_consumer with its
defaults, huey_consumer ``-d 0.001 -m 0.01``):

1. start the consumer as a subprocess on a fresh database and wait (bounded) until a probe
   task has run;
2. latency: enqueue N no-op tasks one at a time from this process, each after a random
   5–25 ms pause once the previous one started (so the consumer is idle every time); each task
   reports its start time with the enqueue time it was given, over a Unix datagram socket.
   Two clocks: "latency" runs from the start of the producer's enqueue call (it includes the
   producer's own enqueue: its serialization, transaction and wake-up call), "from return"
   from the moment that call returned (the task was committed just before);
3. idle CPU: leave the consumer idle for --idle seconds and read the CPU time (utime+stime)
   of the consumer process and all its descendants from /proc; then measure latency again
   (the first task after the idle period is shown on its own: huey's polling back-off grows
   to 10 s while idle);
4. eta precision: schedule M tasks with a 0.2–0.5 s delay, one at a time, and measure
   start − eta;
5. stop the consumer with SIGINT (bounded wait, then SIGKILL).

Clock: time.monotonic() (CLOCK_MONOTONIC, system-wide on Linux) in both processes.

    python bench/latency.py            # full run: N=300, 60 s idle, M=20 (~8 minutes)
    python bench/latency.py --quick    # CI: N=40, 3 s idle, M=5 (< 60 s)
    python bench/latency.py --redis    # the same for RedisQueue next to huey's RedisHuey,
                                       # on a redis-server started for the run

With ``--redis`` the producer (this process) and the consumer talk over TCP to a
``redis-server`` on 127.0.0.1 (a free port, no persistence), emptied before each system; the
app modules are written to the run's temporary directory.

Exit status 1 if a consumer fails to start or a task does not run in time, 2 on bad usage.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
APPS = os.path.join(HERE, '_apps')
ROOT = os.path.dirname(HERE)  # the sqlq source tree measured (--sqlq-src changes it)

# name, family, consumer options
SYSTEMS: List[Tuple[str, str, List[str]]] = [
    ('sqlq thread', 'sqlq', ['-w', '1', '-k', 'thread']),
    ('sqlq process', 'sqlq', ['-w', '1', '-k', 'process']),
    ('huey default', 'huey', []),
    ('huey tuned', 'huey', ['-d', '0.001', '-m', '0.01']),
]
RATIO = ('sqlq thread', 'huey default')  # the ratio column: first / second
REDIS_SYSTEMS: List[Tuple[str, str, List[str]]] = [
    ('sqlq redis thread', 'sqlq-redis', ['-w', '1', '-k', 'thread']),
    ('sqlq redis process', 'sqlq-redis', ['-w', '1', '-k', 'process']),
    ('huey redis default', 'huey-redis', []),
]
REDIS_RATIO = ('sqlq redis thread', 'huey redis default')
#: family -> (app module, its environment variable naming the database or Redis URL)
FAMILIES = {'sqlq': ('sqlq_app', 'SQLQ_BENCH_DB'), 'huey': ('huey_app', 'HUEY_BENCH_DB'),
            'sqlq-redis': ('sqlq_redis_app', 'SQLQ_BENCH_REDIS'),
            'huey-redis': ('huey_redis_app', 'HUEY_BENCH_REDIS')}
#: The Redis app modules, like bench/_apps' SQLite ones (written to the run's directory).
REDIS_APP = '''import os
import _ledger
from {package} import {cls}


def make(url):
    {var} = {cls}('bench', url=url)

    @{var}.task(name='bench.record')
    def record(tag, enqueued):
        return _ledger.report(tag, enqueued)

    return {var}, record


{var} = record = None
if os.environ.get('{env}'):
    {var}, record = make(os.environ['{env}'])
'''
REDIS_APPS = {
    'sqlq_redis_app': REDIS_APP.format(package='sqlq', cls='RedisQueue', var='queue',
                                       env='SQLQ_BENCH_REDIS'),
    'huey_redis_app': REDIS_APP.format(package='huey', cls='RedisHuey', var='huey',
                                       env='HUEY_BENCH_REDIS'),
}
#: Directory of the Redis app modules (set by main() with --redis).
REDIS_APP_DIR: Optional[str] = None

START_TIMEOUT = 30.0   # consumer start: probe task must have run by then
STOP_TIMEOUT = 15.0    # SIGINT → exit, then SIGKILL
GAP = (0.005, 0.025)   # pause before each enqueue, seconds
ETA_DELAY = (0.2, 0.5)  # scheduled tasks' delay, seconds


class BenchError(Exception):
    """A consumer did not start, died, or did not run a task in time."""


def log(message: str) -> None:
    print('[%s] %s' % (time.strftime('%H:%M:%S'), message), file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------- ledger

class Ledger:
    """Receives ``tag enqueued started`` datagrams from tasks (see _apps/_ledger.py)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.seen: Dict[str, Tuple[float, float]] = {}

    def wait(self, tag: str, timeout: float, proc: subprocess.Popen) -> Tuple[float, float]:
        """(enqueued, started) of task ``tag``; BenchError after ``timeout`` seconds or if the
        consumer exits first."""
        deadline = time.monotonic() + timeout
        while tag not in self.seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError('task %s did not start within %.0f s' % (tag, timeout))
            self.sock.settimeout(min(remaining, 0.5))
            try:
                data = self.sock.recv(512)
            except socket.timeout:
                if proc.poll() is not None:
                    raise BenchError('consumer exited with status %s'
                                     % proc.returncode) from None
                continue
            got, enqueued, started = data.decode('ascii').split()
            self.seen[got] = (float(enqueued), float(started))
        return self.seen[tag]

    def close(self) -> None:
        self.sock.close()


# ------------------------------------------------------------------------------- /proc CPU

CLK_TCK = os.sysconf('SC_CLK_TCK')


def _stat(pid: int) -> Optional[List[str]]:
    try:
        with open('/proc/%d/stat' % pid) as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rindex(')') + 2:].split()  # fields from 3 (state) on


def descendants(pid: int) -> List[int]:
    """pid's live descendants, via /proc/<pid>/task/*/children (or a /proc scan)."""
    found: List[int] = []
    stack = [pid]
    while stack:
        parent = stack.pop()
        kids: List[int] = []
        task_dir = '/proc/%d/task' % parent
        try:
            tids = os.listdir(task_dir)
        except OSError:
            continue
        if os.path.exists(os.path.join(task_dir, tids[0], 'children')) if tids else False:
            for tid in tids:
                try:
                    with open(os.path.join(task_dir, tid, 'children')) as f:
                        kids.extend(int(k) for k in f.read().split())
                except OSError:
                    pass
        else:  # kernel without CONFIG_PROC_CHILDREN
            for entry in os.listdir('/proc'):
                if entry.isdigit():
                    fields = _stat(int(entry))
                    if fields and int(fields[1]) == parent:
                        kids.append(int(entry))
        found.extend(kids)
        stack.extend(kids)
    return found


def tree_cpu(pid: int) -> Tuple[float, List[int]]:
    """CPU seconds (utime+stime, all threads) used so far by pid and its live descendants."""
    pids = [pid] + descendants(pid)
    ticks = 0
    for p in pids:
        fields = _stat(p)
        if fields:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return ticks / CLK_TCK, pids


# ----------------------------------------------------------------------------------- stats

def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), q in [0, 100]."""
    data = sorted(values)
    if not data:
        return math.nan
    pos = (len(data) - 1) * q / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def summary(samples: Sequence[float]) -> Dict[str, float]:
    return {'n': len(samples), 'p50': percentile(samples, 50), 'p99': percentile(samples, 99),
            'min': min(samples), 'max': max(samples), 'mean': sum(samples) / len(samples)}


# -------------------------------------------------------------------------------- systems

def app_paths() -> List[str]:
    return [ROOT, APPS] + ([REDIS_APP_DIR] if REDIS_APP_DIR else [])


def app_handle(family: str, db: str) -> Tuple[Any, Any]:
    """(queue/huey object, record task) in this process, on database (or Redis URL) ``db``."""
    import importlib
    for path in reversed(app_paths()):
        if path not in sys.path:
            sys.path.insert(0, path)
    return importlib.import_module(FAMILIES[family][0]).make(db)


def consumer_command(family: str, options: List[str]) -> List[str]:
    module = FAMILIES[family][0]
    if family.startswith('sqlq'):
        return [sys.executable, '-m', 'sqlq', 'consume', module + '.queue'] + options
    return [sys.executable, '-m', 'huey.bin.huey_consumer', module + '.huey'] + options


def start_consumer(family: str, options: List[str], db: str, ledger: str,
                   logfile: str) -> subprocess.Popen:
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        app_paths() + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
    env[FAMILIES[family][1]] = db
    env['BENCH_LEDGER'] = ledger
    with open(logfile, 'wb') as out:
        return subprocess.Popen(consumer_command(family, options), cwd=APPS, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop_consumer(proc: subprocess.Popen) -> Optional[float]:
    """SIGINT, wait up to STOP_TIMEOUT, then SIGKILL the group. Seconds it took to exit, or
    None if it had to be killed."""
    if proc.poll() is not None:
        return 0.0
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(STOP_TIMEOUT)
        return time.monotonic() - started
    except subprocess.TimeoutExpired:
        log('  consumer ignored SIGINT for %.0f s: killing it' % STOP_TIMEOUT)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)
        return None
    finally:
        # process workers left behind by a killed parent
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, 'rb') as f:
            text = f.read().decode('utf-8', 'replace')
    except OSError:
        return ''
    return '\n'.join('    | ' + line for line in text.splitlines()[-lines:])


def measure_latency(record: Any, ledger: Ledger, proc: subprocess.Popen, phase: str, n: int,
                    rng: random.Random,
                    task_timeout: float) -> Tuple[List[float], List[float]]:
    """Milliseconds from the start of each enqueue call to its task's start, and from the
    call's return to its task's start."""
    from_call, from_return = [], []
    for i in range(n):
        time.sleep(rng.uniform(*GAP))
        tag = '%s-%d' % (phase, i)
        enqueued = time.monotonic()
        record(tag, enqueued)
        returned = time.monotonic()
        _, started = ledger.wait(tag, task_timeout, proc)
        from_call.append((started - enqueued) * 1000.0)
        from_return.append((started - returned) * 1000.0)
    return from_call, from_return


def measure_eta(record: Any, ledger: Ledger, proc: subprocess.Popen, m: int,
                rng: random.Random, task_timeout: float) -> List[float]:
    samples = []
    for i in range(m):
        time.sleep(rng.uniform(*GAP))
        tag = 'eta-%d' % i
        delay = rng.uniform(*ETA_DELAY)
        now = time.monotonic()
        record.schedule(args=(tag, now), delay=delay)
        _, started = ledger.wait(tag, delay + task_timeout, proc)
        samples.append((started - (now + delay)) * 1000.0)
    return samples


def run_system(name: str, family: str, options: List[str], args: argparse.Namespace,
               workdir: str, rng: random.Random) -> Dict[str, Any]:
    slug = name.replace(' ', '-')
    db = os.path.join(workdir, slug + '.db')
    if args.redis_server is not None:
        db = args.redis_server.fresh_url()
    logfile = os.path.join(workdir, slug + '.log')
    ledger = Ledger(os.path.join(workdir, slug + '.sock'))
    cmd = consumer_command(family, options)
    result: Dict[str, Any] = {'system': name, 'command': ' '.join(cmd[1:]), 'ok': False}
    log('%s: starting `%s`' % (name, ' '.join(['python'] + cmd[1:])))
    handle, record = app_handle(family, db)
    proc = start_consumer(family, options, db, ledger.path, logfile)
    try:
        t0 = time.monotonic()
        record('probe', time.monotonic())
        try:
            ledger.wait('probe', START_TIMEOUT, proc)
        except BenchError as exc:
            raise BenchError('consumer not ready: %s' % exc) from exc
        result['ready_s'] = time.monotonic() - t0
        log('  ready in %.2f s (probe task ran); %d warm-up tasks'
            % (result['ready_s'], args.warmup))
        measure_latency(record, ledger, proc, 'warm', args.warmup, rng, args.task_timeout)

        log('  latency: %d tasks, %d–%d ms apart' % (args.n, GAP[0] * 1000, GAP[1] * 1000))
        lat, returned = measure_latency(record, ledger, proc, 'lat', args.n, rng,
                                         args.task_timeout)
        result['latency'] = summary(lat)
        result['latency_from_return'] = summary(returned)
        log('    p50 %.2f ms, p99 %.2f ms, max %.2f ms; from return: p50 %.2f ms, p99 %.2f ms'
            % (result['latency']['p50'], result['latency']['p99'], result['latency']['max'],
               result['latency_from_return']['p50'], result['latency_from_return']['p99']))

        log('  idle CPU: %.0f s' % args.idle)
        time.sleep(0.2)  # let the last task's result write finish
        cpu0, pids0 = tree_cpu(proc.pid)
        w0 = time.monotonic()
        time.sleep(args.idle)
        cpu1, pids1 = tree_cpu(proc.pid)
        wall = time.monotonic() - w0
        if proc.poll() is not None:
            raise BenchError('consumer exited with status %s while idle' % proc.returncode)
        result['idle'] = {'seconds': wall, 'cpu_seconds': cpu1 - cpu0,
                          'cpu_percent': 100.0 * (cpu1 - cpu0) / wall,
                          'processes': len(pids1), 'process_set_changed': pids0 != pids1}
        log('    %.2f %% of one core (%d process(es))'
            % (result['idle']['cpu_percent'], len(pids1)))

        log('  latency after idle: %d tasks' % args.n)
        after, after_returned = measure_latency(record, ledger, proc, 'after', args.n, rng,
                                                 args.task_timeout)
        result['after_idle'] = summary(after)
        result['after_idle']['first'] = after[0]
        result['after_idle_from_return'] = summary(after_returned)
        log('    first %.2f ms, p50 %.2f ms, p99 %.2f ms; from return: p50 %.2f ms'
            % (after[0], result['after_idle']['p50'], result['after_idle']['p99'],
               result['after_idle_from_return']['p50']))

        log('  eta: %d tasks scheduled %d–%d ms ahead'
            % (args.eta, ETA_DELAY[0] * 1000, ETA_DELAY[1] * 1000))
        eta = measure_eta(record, ledger, proc, args.eta, rng, args.task_timeout)
        result['eta_lateness'] = summary(eta)
        log('    start − eta: p50 %.2f ms, p99 %.2f ms, min %.2f ms'
            % (result['eta_lateness']['p50'], result['eta_lateness']['p99'],
               result['eta_lateness']['min']))
        result['ok'] = True
    except BenchError as exc:
        result['error'] = str(exc)
        log('  FAILED: %s' % exc)
        log('  consumer log (%s):\n%s' % (logfile, tail(logfile)))
    finally:
        stopped = stop_consumer(proc)
        result['stop_s'] = stopped
        ledger.close()
        close = getattr(handle, 'close', None)
        if callable(close):
            close()
        log('  stopped%s' % (' in %.2f s' % stopped if stopped is not None else ' (killed)'))
    return result


# ---------------------------------------------------------------------------------- redis

class BenchRedis:
    """A redis-server for a ``--redis`` run: 127.0.0.1, a free port, no persistence."""

    def __init__(self, workdir: str) -> None:
        exe = shutil.which('redis-server')
        if exe is None:
            raise BenchError('redis-server not installed: apt-get install redis-server '
                             '(or brew install redis)')
        try:
            import redis
        except ImportError:
            raise BenchError("redis-py not installed: pip install -e '.[redis]'") from None
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [exe, '--port', str(self.port), '--bind', '127.0.0.1', '--save', '',
             '--appendonly', 'no', '--dir', workdir], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        self.client = redis.Redis(host='127.0.0.1', port=self.port)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                self.version = self.client.info('server')['redis_version']
                break
            except redis.RedisError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise BenchError('redis-server did not start') from None
                time.sleep(0.02)

    def fresh_url(self) -> str:
        self.client.flushall()
        return 'redis://127.0.0.1:%d/0' % self.port

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# ---------------------------------------------------------------------------------- report

ROWS = [
    ('latency p50 (ms)', 'latency', 'p50'),
    ('latency p99 (ms)', 'latency', 'p99'),
    ('latency max (ms)', 'latency', 'max'),
    ('latency from return p50 (ms)', 'latency_from_return', 'p50'),
    ('latency from return p99 (ms)', 'latency_from_return', 'p99'),
    ('after idle: first task (ms)', 'after_idle', 'first'),
    ('after idle: p50 (ms)', 'after_idle', 'p50'),
    ('after idle: p99 (ms)', 'after_idle', 'p99'),
    ('after idle: from return p50 (ms)', 'after_idle_from_return', 'p50'),
    ('idle CPU (% of one core)', 'idle', 'cpu_percent'),
    ('eta lateness p50 (ms)', 'eta_lateness', 'p50'),
    ('eta lateness p99 (ms)', 'eta_lateness', 'p99'),
    ('eta lateness min (ms)', 'eta_lateness', 'min'),
]


def fmt(value: Optional[float]) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '—'
    magnitude = abs(value)
    if magnitude >= 100:
        return '%.0f' % value
    if magnitude >= 10:
        return '%.1f' % value
    return '%.2f' % value


def fmt_ratio(r: float) -> str:
    return ('%.0f×' if r >= 10 else '%.1f×' if r >= 1 else '%.2g×') % r


def figure(results: Dict[str, Dict[str, Any]], system: str, section: str,
           key: str) -> Optional[float]:
    r = results.get(system)
    if not r or section not in r:
        return None
    return r[section].get(key)


def table(results: Dict[str, Dict[str, Any]],
          ratio_of: Tuple[str, str] = RATIO) -> str:
    systems = [name for name, _, _ in SYSTEMS + REDIS_SYSTEMS if name in results]
    ratio = all(s in results for s in ratio_of)
    head = ['figure'] + systems + (['%s / %s' % ratio_of] if ratio else [])
    lines = ['| ' + ' | '.join(head) + ' |',
             '|---' + '|---:' * (len(head) - 1) + '|']
    for label, section, key in ROWS:
        cells = [label]
        for s in systems:
            value = figure(results, s, section, key)
            cells.append('FAILED' if value is None and not results[s]['ok'] else fmt(value))
        if ratio:
            a, b = (figure(results, s, section, key) for s in ratio_of)
            cells.append(fmt_ratio(a / b) if a is not None and b is not None and a > 0 and b > 0
                         else '—')
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def machine_probe() -> Dict[str, float]:
    """How fast this machine is right now (its speed drifts by a third on a shared VM):
    a fixed pure-Python loop (ms, best of 5), and single-row apsw commits into a WAL file
    (µs, median): back to back, and each after a 5 ms pause (a cold CPU, as an idle
    consumer's)."""
    def loop() -> int:
        total = 0
        for i in range(200000):
            total += i * i % 7
        return total
    best = float('inf')
    for _ in range(5):
        t0 = time.perf_counter()
        loop()
        best = min(best, time.perf_counter() - t0)
    probe = {'python_loop_ms': best * 1000.0}
    try:
        import apsw
    except ImportError:
        return probe
    workdir = tempfile.mkdtemp(prefix='sqlq-probe-')
    try:
        conn = apsw.Connection(os.path.join(workdir, 'probe.db'))
        for sql in ('PRAGMA journal_mode=WAL', 'PRAGMA synchronous=NORMAL',
                    'CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB)'):
            conn.execute(sql).fetchall()
        blob = b'x' * 120
        times = []
        for _ in range(300):
            t0 = time.perf_counter()
            conn.execute('INSERT INTO t (data) VALUES (?)', (blob,))
            times.append(time.perf_counter() - t0)
        probe['sqlite_commit_us'] = statistics.median(times) * 1e6
        times = []
        for _ in range(60):  # after a pause, as an idle consumer's first statement runs
            time.sleep(0.005)
            t0 = time.perf_counter()
            conn.execute('INSERT INTO t (data) VALUES (?)', (blob,))
            times.append(time.perf_counter() - t0)
        probe['sqlite_cold_commit_us'] = statistics.median(times) * 1e6
        conn.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return probe


def describe_probe(before: Dict[str, float], after: Dict[str, float]) -> str:
    def one(p: Dict[str, float]) -> str:
        return '%.1f ms Python loop, SQLite commit %.1f µs (%.0f µs cold)' % (
            p['python_loop_ms'], p.get('sqlite_commit_us', float('nan')),
            p.get('sqlite_cold_commit_us', float('nan')))
    return 'machine probe (see machine_probe()): %s before, %s after' % (one(before), one(after))


def environment() -> Dict[str, Any]:
    env: Dict[str, Any] = {
        'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        'python': platform.python_version(), 'cpus': os.cpu_count()}
    try:
        out = subprocess.run(['lscpu'], capture_output=True, text=True, timeout=10).stdout
        env['cpu'] = next((line.split(':', 1)[1].strip() for line in out.splitlines()
                           if line.startswith('Model name')), platform.processor())
    except (OSError, subprocess.SubprocessError):
        env['cpu'] = platform.processor()
    try:
        import apsw
        env['sqlite_apsw'] = apsw.sqlite_lib_version()
    except ImportError:
        pass
    import sqlite3
    env['sqlite_stdlib'] = sqlite3.sqlite_version
    try:
        sys.path.insert(0, ROOT)
        import sqlq
        env['sqlq'] = sqlq.__version__
        from sqlq import _accel
        env['sqlq_fastpath'] = getattr(_accel, 'IMPLEMENTATION', None) or getattr(
            _accel, '__name__', '')
    except Exception:
        pass
    try:
        import huey
        env['huey'] = huey.__version__
    except ImportError:
        pass
    try:
        env['sqlq_commit'] = os.environ.get('BENCH_SQLQ_COMMIT') or subprocess.run(
            ['git', '-C', ROOT, 'rev-parse', '--short', 'HEAD'], capture_output=True,
            text=True, timeout=10).stdout.strip() or 'unknown'
        if not os.environ.get('BENCH_SQLQ_COMMIT') and subprocess.run(
                ['git', '-C', ROOT, 'status', '--porcelain', '--', 'sqlq'],
                capture_output=True, text=True, timeout=10).stdout.strip():
            env['sqlq_commit'] += '+uncommitted changes'
    except (OSError, subprocess.SubprocessError):
        pass
    return env


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description='Enqueue→start latency, idle CPU and eta precision: sqlq vs huey '
                    'SqliteHuey, measured in the same run.')
    parser.add_argument('--quick', action='store_true',
                        help='short run for CI: N=40, idle 3 s, 5 eta tasks (< 60 s in all)')
    parser.add_argument('-n', type=int, default=None,
                        help='tasks per latency measurement (default 300; quick 40)')
    parser.add_argument('--idle', type=float, default=None,
                        help='seconds the consumer is left idle (default 60; quick 3)')
    parser.add_argument('--eta', type=int, default=None,
                        help='scheduled tasks for eta precision (default 20; quick 5)')
    parser.add_argument('--warmup', type=int, default=5, help='warm-up tasks (default 5)')
    parser.add_argument('--only', choices=('sqlq', 'huey'), default=None,
                        help='run only one system family')
    parser.add_argument('--json', metavar='PATH', default=None,
                        help='also write every figure and the environment to PATH as JSON')
    parser.add_argument('--sqlq-src', metavar='DIR', default=None,
                        help='measure the sqlq package in DIR (a checkout or `git archive` '
                             'export, extension built in place) instead of this tree')
    parser.add_argument('--redis', action='store_true',
                        help='measure RedisQueue and huey RedisHuey on a redis-server '
                             'started for the run (redis-server must be on PATH)')
    parser.add_argument('--seed', type=int, default=1, help='random seed for the gaps')
    parser.add_argument('--task-timeout', type=float, default=30.0,
                        help='seconds a task may take to start before the run fails '
                             '(default 30; huey backs off up to 10 s)')
    args = parser.parse_args(argv)
    args.n = args.n if args.n is not None else (40 if args.quick else 300)
    args.idle = args.idle if args.idle is not None else (3.0 if args.quick else 60.0)
    args.eta = args.eta if args.eta is not None else (5 if args.quick else 20)
    if args.n < 1 or args.eta < 1 or args.idle <= 0 or args.warmup < 0:
        parser.error('-n and --eta must be positive, --idle > 0, --warmup >= 0')
    if not sys.platform.startswith('linux'):
        parser.error('needs Linux (/proc for CPU time, system-wide CLOCK_MONOTONIC)')

    global ROOT
    if args.sqlq_src:
        ROOT = os.path.abspath(args.sqlq_src)
        if not os.path.isfile(os.path.join(ROOT, 'sqlq', '__init__.py')):
            parser.error('--sqlq-src %s has no sqlq/__init__.py' % args.sqlq_src)
    all_systems = REDIS_SYSTEMS if args.redis else SYSTEMS
    systems = [s for s in all_systems if args.only in (None, s[1].split('-')[0])]
    try:
        import huey  # noqa: F401
    except ImportError:
        if args.only == 'huey':
            print("latency.py: huey is not installed: pip install -e '.[bench]'",
                  file=sys.stderr)
            return 2
        log("huey is not installed (pip install -e '.[bench]'): measuring sqlq only")
        systems = [s for s in systems if not s[1].startswith('huey')]

    env = environment()
    log('sqlq %s (%s), Python %s, SQLite %s (apsw) / %s (stdlib, huey), huey %s, %s × %s'
        % (env.get('sqlq'), env.get('sqlq_commit'), env['python'], env.get('sqlite_apsw'),
           env['sqlite_stdlib'], env.get('huey', '—'), env['cpus'], env['cpu']))
    rng = random.Random(args.seed)
    env['probe_before'] = machine_probe()
    workdir = tempfile.mkdtemp(prefix='sqlq-bench-')
    results: Dict[str, Dict[str, Any]] = {}
    began = time.monotonic()
    args.redis_server = None
    try:
        if args.redis:
            global REDIS_APP_DIR
            REDIS_APP_DIR = workdir
            for module, text in REDIS_APPS.items():
                with open(os.path.join(workdir, module + '.py'), 'w') as f:
                    f.write(text)
            try:
                args.redis_server = BenchRedis(workdir)
            except BenchError as exc:
                print('latency.py: %s' % exc, file=sys.stderr)
                return 2
            env['redis_server'] = args.redis_server.version
            log('redis-server %s on 127.0.0.1:%d (no persistence)'
                % (args.redis_server.version, args.redis_server.port))
        for name, family, options in systems:
            results[name] = run_system(name, family, options, args, workdir, rng)
    except KeyboardInterrupt:
        log('interrupted')
        return 130
    finally:
        if args.redis_server is not None:
            args.redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - began
    env['probe_after'] = machine_probe()

    print()
    print('sqlq latency benchmark — %s; N=%d, idle %g s, %d eta tasks; %s; Python %s; '
          'SQLite %s (apsw), %s (stdlib, huey); huey %s; sqlq %s (%s); clock: '
          'CLOCK_MONOTONIC; %.0f s'
          % (env['date'], args.n, args.idle, args.eta, env['cpu'], env['python'],
             env.get('sqlite_apsw'), env['sqlite_stdlib'], env.get('huey', '—'),
             env.get('sqlq'), env.get('sqlq_commit'), elapsed))
    print(describe_probe(env['probe_before'], env['probe_after']))
    print()
    print(table(results, REDIS_RATIO if args.redis else RATIO), flush=True)
    failed = [r for r in results.values() if not r['ok']]
    for r in failed:
        print('\n%s FAILED: %s' % (r['system'], r.get('error')))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'environment': env, 'options': {
                'n': args.n, 'idle': args.idle, 'eta': args.eta, 'warmup': args.warmup,
                'seed': args.seed, 'argv': sys.argv[1:]}, 'elapsed_s': elapsed,
                'results': results}, f, indent=2)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
