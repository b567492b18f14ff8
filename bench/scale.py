#!/usr/bin/env python3
"""sqlq next to huey's SqliteHuey at every size, in one run on one machine: how enqueue and
drain hold up with the depth of the queue and the size of the payload, whether an urgent task
overtakes a deep backlog, how the drain scales with workers, and how late a task due at T
starts with a big schedule waiting behind it.

    python bench/scale.py                  # full run (~8-12 minutes on the 2-core VM)
    python bench/scale.py --quick          # CI: small sizes (< 90 s)
    python bench/scale.py --only sqlq --skip depth,payload --workers 1t,4p --json /tmp/s.json

Sections (each skippable with ``--skip``), every figure for sqlq, huey and their ratio:

- **depth**: single enqueues (one call, one commit per task) and a drain (1 thread worker) of
  N tasks while the queue already holds D pending tasks (``--depths``, default 0,100k,1M).
- **payload**: single enqueues and a drain of tasks carrying a P-byte argument
  (``--payloads``, default 100,10k,1M; fewer tasks for big payloads: at most
  ``--payload-bytes`` in all), and the WAL bytes each task writes (enqueue, claim, ack and
  result) measured in this process with the WAL never checkpointed, divided by P.
- **priority**: K background tasks pending over priorities 0-9 (``--pending``, default 100k)
  being drained by one thread worker; U urgent tasks of priority 10 (``--urgent``) enqueued one
  at a time, each once the previous one started: the delay from the enqueue call to the start
  of each, and how many lower-priority tasks started in between (from the background tasks'
  own start times, stored as their results).
- **workers**: the drain of N tasks and the consumer's CPU per task with ``--workers``
  (default 1t,2p,4p,8p), as bench/compare.py measures them.
- **eta**: M tasks scheduled 0.2-0.5 s ahead (``--eta``) while E others wait in the schedule
  for an hour (``--scheduled``, default 100k): start - eta.

A machine probe (latency.py's) is printed before and after. Exit status 1 if a consumer failed.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
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
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
import compare as C  # noqa: E402  (bench/compare.py: drains)
import latency as L  # noqa: E402  (bench/latency.py: consumers, ledger, probe, stats)

SYSTEMS = ('sqlq', 'huey')
FAR = 3600.0  # seconds: the delay of the schedule's background tasks
URGENT_GAP = (0.01, 0.03)  # seconds between an urgent task's start and the next enqueue

FULL = dict(tasks=20000, depths='0,100k,1M', payloads='100,10k,1M', payload_bytes=200_000_000,
            pending=100000, urgent=20, workers='1t,2p,4p,8p', scheduled=100000, eta=20,
            repeat=2)
QUICK = dict(tasks=2000, depths='0,10k', payloads='100,10k,100k', payload_bytes=20_000_000,
             pending=10000, urgent=5, workers='1t,2p', scheduled=10000, eta=5, repeat=1)

# Issue 17's targets: row key -> (text, check(sqlq, huey, figures) -> bool)
Check = Callable[[float, Optional[float], Dict[str, Dict[str, float]]], bool]


def size(text: str) -> int:
    """'100', '10k', '1M' -> 100, 10000, 1000000."""
    text = text.strip()
    scale = {'k': 1000, 'K': 1000, 'M': 1000000}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def sizes(text: str) -> List[int]:
    return [size(t) for t in text.split(',') if t.strip()]


def human(n: int) -> str:
    for unit, div in (('M', 1000000), ('k', 1000)):
        if n >= div and n % (div // 10) == 0:
            return ('%g' % (n / div)) + unit
    return str(n)


# ------------------------------------------------------------------------------- the apps

class App:
    """One system's app in this process, on one database: the queue (or huey) and its tasks."""

    def __init__(self, family: str, db: str) -> None:
        self.family = family
        self.handle, self.record = L.app_handle(family, db)
        import _ledger  # bench/_apps, on sys.path after app_handle
        self.ledger = _ledger
        self.noop = _ledger.add_noop(self.handle)
        self.sized, self.prio, self.urgent = _ledger.add_scale_tasks(self.handle)

    def close(self) -> None:
        C.close_app(self.family, self.handle)

    def fill(self, make: Callable[[int], Any], count: int) -> None:
        """Enqueue the tasks ``make(0)`` ... ``make(count - 1)`` (``wrapper.s(...)``), each
        system its fastest way, 5000 per transaction (not timed)."""
        for start in range(0, count, 5000):
            tasks = [make(i) for i in range(start, min(count, start + 5000))]
            if self.family == 'sqlq':
                self.handle.enqueue_many(tasks)
                continue
            huey = self.handle  # no batch enqueue in huey 3.5.4: its own rows, one transaction
            rows = [(huey.storage.name, huey.serialize_task(task), task.priority or 0)
                    for task in tasks]
            with huey.storage.db(commit=True) as curs:
                curs.executemany('insert into task (queue, data, priority) values (?, ?, ?)',
                                 rows)

    def fill_schedule(self, count: int, delay: float) -> None:
        """``count`` no-op tasks due in ``delay`` seconds (not timed)."""
        if self.family == 'sqlq':
            for start in range(0, count, 5000):
                with self.handle.storage.transaction():
                    for i in range(start, min(count, start + 5000)):
                        self.noop.schedule((i,), delay=delay)
            return
        huey = self.handle
        eta = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) + \
            datetime.timedelta(seconds=delay)
        for start in range(0, count, 5000):
            rows = []
            for i in range(start, min(count, start + 5000)):
                task = self.noop.s(i)
                task.eta = eta
                rows.append((huey.storage.name, huey.serialize_task(task), eta.timestamp()))
            with huey.storage.db(commit=True) as curs:
                curs.executemany('insert into schedule (queue, data, timestamp) '
                                 'values (?, ?, ?)', rows)

    def results(self) -> Dict[str, Any]:
        """Every stored result, deserialized."""
        items = self.handle.storage.result_items()
        loads = self.handle.serializer.deserialize
        return {key: loads(value) for key, value in items.items()}


# ----------------------------------------------------------------------------- the bench

class Scale:
    def __init__(self, args: argparse.Namespace, workdir: str) -> None:
        self.args = args
        self.workdir = workdir
        self.templates: Dict[Tuple[str, str], str] = {}
        self.figures: Dict[str, Dict[str, float]] = {s: {} for s in SYSTEMS}
        self.runs: Dict[str, Dict[str, List[Any]]] = {s: {} for s in SYSTEMS}
        self.rows: List[Tuple[str, str, str]] = []  # (key, label, kind)
        self.drains = 0

    def row(self, key: str, label: str, kind: str) -> None:
        if all(r[0] != key for r in self.rows):
            self.rows.append((key, label, kind))

    def record(self, system: str, key: str, value: Optional[float], run: Any = None) -> None:
        """One run's figure (and, in --json, what it came from); the table shows medians."""
        self.runs[system].setdefault(key, []).append(value if run is None else
                                                     {'value': value, 'run': run})
        values = [r['value'] if isinstance(r, dict) else r for r in self.runs[system][key]]
        values = [v for v in values if v is not None]
        if values:
            self.figures[system][key] = statistics.median(values)

    def path(self, name: str) -> str:
        return os.path.join(self.workdir, name)

    def socket_path(self, name: str) -> str:
        """A fresh path for a ledger socket (one per run: --repeat binds several)."""
        self._sockets = getattr(self, '_sockets', 0) + 1
        return self.path('%d-%s' % (self._sockets, name))

    def template(self, family: str, name: str, build: Callable[[App], None]) -> str:
        """A closed database built once per (family, name), WAL folded in."""
        key = (family, name)
        if key not in self.templates:
            db = self.path('template-%s-%s.db' % (family, name))
            L.log('%s: building template %s' % (family, name))
            t0 = time.monotonic()
            app = App(family, db)
            try:
                build(app)
            finally:
                app.close()
            L.log('  done in %.1f s' % (time.monotonic() - t0))
            self.templates[key] = db
        return self.templates[key]

    def fresh(self, template: Optional[str], name: str) -> str:
        db = self.path(name)
        for suffix in ('', '-wal', '-shm'):
            with contextlib.suppress(OSError):
                os.unlink(db + suffix)
        if template is not None:
            C.copy_db(template, db)
        return db

    def drop(self, db: str) -> None:
        for suffix in ('', '-wal', '-shm'):
            with contextlib.suppress(OSError):
                os.unlink(db + suffix)

    # -------------------------------------------------------------------- measurements

    def enqueue(self, family: str, template: Optional[str], n: int, payload: int) -> float:
        """Tasks/s of N single enqueues into a copy of ``template`` (or a fresh file), in a
        fresh subprocess (warm-up first)."""
        db = self.fresh(template, 'enqueue-%s.db' % family)
        env = dict(os.environ)
        env['PYTHONPATH'] = os.pathsep.join(
            L.app_paths() + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
        cmd = [sys.executable, os.path.abspath(__file__), '--child-enqueue',
               '%s,%d,%d,%s' % (family, n, payload, db), '--sqlq-src', L.ROOT]
        try:
            proc = subprocess.run(cmd, cwd=L.APPS, env=env, capture_output=True, text=True,
                                  timeout=max(120.0, n / 100.0), stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise L.BenchError('enqueue (%s) timed out' % family) from None
        finally:
            self.drop(db)
        if proc.returncode != 0:
            raise L.BenchError('enqueue (%s) failed:\n%s' % (family, proc.stderr[-2000:]))
        rate: float = json.loads(proc.stdout.strip().splitlines()[-1])['rate']
        return rate

    def drain(self, family: str, template: str, n: int, workers: int, kind: str,
              run: int) -> Dict[str, Any]:
        """compare.py's drain of the first N tasks of a copy of ``template``."""
        self.drains += 1  # a fresh name for each drain's files
        result: Dict[str, Any] = C.measure_drain(family, workers, kind, n, template,
                                                 self.workdir, self.drains, self.args)
        return result

    def wal_bytes(self, family: str, payload: int, m: int) -> Dict[str, float]:
        """WAL bytes per task for M tasks of a P-byte argument, enqueued in one transaction
        (sqlq ``enqueue_many``; huey: its rows, as :meth:`App.fill`) then drained by one worker
        running in this process; the WAL is never checkpointed."""
        db = self.fresh(None, 'wal-%s.db' % family)
        app = App(family, db)
        data = b'x' * payload
        try:
            if family == 'sqlq':
                app.handle.storage.defer_checkpoints(True)  # this process's connections
            else:
                app.handle.storage.conn.execute('pragma wal_autocheckpoint=0')
            app.sized(-1, b'')  # the file and its WAL exist
            wal = db + '-wal'
            before = os.path.getsize(wal)
            app.fill(lambda i: app.sized.s(i, data), m)
            enqueued = os.path.getsize(wal)
            self._drain_in_process(app, m + 1)
            drained = os.path.getsize(wal)
        finally:
            app.close()
            self.drop(db)
        return {'enqueue': (enqueued - before) / m, 'drain': (drained - enqueued) / m,
                'total': (drained - before) / m}

    @staticmethod
    def _drain_in_process(app: App, count: int) -> None:
        """Run one worker in this process (sqlq's Worker in a thread; huey's consumer) until
        ``count`` results are stored."""
        if app.family == 'sqlq':
            import threading

            from sqlq.worker import Worker
            stop = threading.Event()
            worker = Worker(app.handle, stop, name='wal-worker', idle_wait=0.01)
            thread = threading.Thread(target=worker.run, daemon=True)
            thread.start()

            def end() -> None:
                stop.set()
                thread.join(30)
        else:
            consumer = app.handle.create_consumer(workers=1, periodic=False,
                                                  initial_delay=0.001, max_delay=0.01)
            consumer.start()

            def end() -> None:
                consumer.stop(graceful=True)
        deadline = time.monotonic() + 300
        try:
            while app.handle.storage.result_store_size() < count:
                if time.monotonic() > deadline:
                    raise L.BenchError('in-process %s drain did not finish' % app.family)
                time.sleep(0.01)
        finally:
            end()

    def priority(self, family: str, template: str, urgent: int,
                 rng: random.Random) -> Dict[str, Any]:
        """Urgent tasks enqueued while one thread worker drains a deep, mixed-priority queue:
        their enqueue -> start delays (ms) and how many lower-priority tasks started in between
        (each background task's result is the monotonic time it started)."""
        db = self.fresh(template, 'priority-%s.db' % family)
        app = App(family, db)
        ledger = L.Ledger(self.socket_path('priority-%s.sock' % family))
        logfile = self.path('priority-%s.log' % family)
        options = C.consumer_options(family, 1, 'thread', self.args.quiet_consumers)
        proc = L.start_consumer(family, options, db, ledger.path, logfile)
        delays, returns, starts = [], [], []
        try:
            _, first = ledger.wait('first', L.START_TIMEOUT, proc)
            time.sleep(0.05)  # the worker is in its stride
            for i in range(urgent):
                tag = 'urgent-%d' % i
                enqueued = time.monotonic()
                app.urgent(tag, enqueued)
                returned = time.monotonic()
                _, started = ledger.wait(tag, 30, proc)
                delays.append((started - enqueued) * 1000.0)
                returns.append((started - returned) * 1000.0)
                starts.append((enqueued, returned, started))
                time.sleep(rng.uniform(*URGENT_GAP))
            end = time.monotonic()
        except L.BenchError:
            L.log('  consumer log (%s):\n%s' % (logfile, L.tail(logfile)))
            raise
        finally:
            L.stop_consumer(proc)
            ledger.close()
        try:
            ran = sorted(v for v in app.results().values() if isinstance(v, float))
        finally:
            app.close()
            self.drop(db)
        import bisect
        overtaken = [bisect.bisect_left(ran, s) - bisect.bisect_right(ran, e)
                     for e, _, s in starts]
        # ... of which after the enqueue returned (the urgent task was committed): those the
        # worker ran instead of it; the others started while the producer waited for the lock
        after_return = [bisect.bisect_left(ran, s) - bisect.bisect_right(ran, r)
                        for _, r, s in starts]
        window = [t for t in ran if first <= t <= end]
        rate = (len(window) - 1) / (window[-1] - window[0]) if len(window) > 1 else None
        return {'delay': L.summary(delays), 'from_return': L.summary(returns),
                'overtaken': L.summary(overtaken), 'after_return': L.summary(after_return),
                'background_rate': rate, 'background_done': len(ran)}

    def eta(self, family: str, template: str, m: int, rng: random.Random) -> Dict[str, Any]:
        """start - eta (ms) of M tasks scheduled 0.2-0.5 s ahead, one at a time, while the
        template's schedule holds many more due in an hour."""
        db = self.fresh(template, 'eta-%s.db' % family)
        app = App(family, db)
        ledger = L.Ledger(self.socket_path('eta-%s.sock' % family))
        logfile = self.path('eta-%s.log' % family)
        options = C.consumer_options(family, 1, 'thread', self.args.quiet_consumers)
        proc = L.start_consumer(family, options, db, ledger.path, logfile)
        try:
            app.record('probe', time.monotonic())
            ledger.wait('probe', L.START_TIMEOUT, proc)
            samples = L.measure_eta(app.record, ledger, proc, m, rng, 30.0)
        except L.BenchError:
            L.log('  consumer log (%s):\n%s' % (logfile, L.tail(logfile)))
            raise
        finally:
            L.stop_consumer(proc)
            ledger.close()
            app.close()
            self.drop(db)
        return L.summary(samples)

    # ------------------------------------------------------------------------ sections

    def section_depth(self, systems: List[str]) -> None:
        n, repeat = self.args.tasks, self.args.repeat
        for depth in self.args.depths:
            d = human(depth)
            self.row('enqueue_d%d' % depth, 'enqueue at %s pending (tasks/s)' % d, 'rate')
            self.row('drain_d%d' % depth, 'drain at %s pending, 1 thread (tasks/s)' % d, 'rate')
            for run in range(repeat):
                for family in systems:
                    base = None if not depth else self.template(
                        family, 'depth%d' % depth,
                        lambda app, d=depth: app.fill(app.noop.s, d))
                    rate = self.enqueue(family, base, n, 0)
                    self.record(family, 'enqueue_d%d' % depth, rate)
                    full = self.template(family, 'depth%d+%d' % (depth, n),
                                         lambda app, c=depth + n: app.fill(app.noop.s, c))
                    r = self.drain(family, full, n, 1, 'thread', run)
                    self.record(family, 'drain_d%d' % depth, r['rate'])
                    L.log('depth %s, %s, run %d: enqueue %.0f/s, drain %.0f/s'
                          % (d, family, run + 1, rate, r['rate']))

    def section_payload(self, systems: List[str]) -> None:
        repeat = self.args.repeat
        for payload in self.args.payloads:
            p = human(payload) + 'B'
            n = max(20, min(self.args.tasks, self.args.payload_bytes // payload))
            self.row('enqueue_p%d' % payload, 'enqueue, %s payload (tasks/s) [N=%d]'
                     % (p, n), 'rate')
            self.row('drain_p%d' % payload, 'drain, %s payload, 1 thread (tasks/s)' % p, 'rate')
            self.row('wal_p%d' % payload, 'WAL bytes per task ÷ payload, %s' % p, 'cost')
            self.row('wal_drain_p%d' % payload, '  of which the drain (claim, ack, result)',
                     'cost')
            data = b'x' * payload
            for run in range(repeat):
                for family in systems:
                    rate = self.enqueue(family, None, n, payload)
                    self.record(family, 'enqueue_p%d' % payload, rate)
                    full = self.template(
                        family, 'payload%d' % payload,
                        lambda app, d=data, c=n: app.fill(lambda i: app.sized.s(i, d), c))
                    r = self.drain(family, full, n, 1, 'thread', run)
                    self.record(family, 'drain_p%d' % payload, r['rate'])
                    wal = self.wal_bytes(family, payload, min(n, 2000))
                    self.record(family, 'wal_p%d' % payload, wal['total'] / payload, wal)
                    self.record(family, 'wal_drain_p%d' % payload, wal['drain'] / payload)
                    L.log('payload %s, %s, run %d: enqueue %.0f/s, drain %.0f/s, WAL %.0f + %.0f '
                          'bytes per task' % (p, family, run + 1, rate, r['rate'],
                                              wal['enqueue'], wal['drain']))

    def section_priority(self, systems: List[str], rng: random.Random) -> None:
        pending, urgent = self.args.pending, self.args.urgent
        k = human(pending)
        self.row('prio_delay_p50', 'urgent task, enqueue→start p50 (ms), %s pending' % k, 'cost')
        self.row('prio_delay_max', 'urgent task, enqueue→start max (ms)', 'cost')
        self.row('prio_return_p50', 'urgent task, from the enqueue\'s return, p50 (ms)', 'cost')
        self.row('prio_overtaken_p50', 'lower-priority tasks started after it, p50', 'cost')
        self.row('prio_overtaken_max', 'lower-priority tasks started after it, max', 'cost')
        self.row('prio_after_return_max', '... of which after the enqueue returned, max',
                 'cost')
        self.row('prio_rate', 'background drain meanwhile (tasks/s)', 'rate')
        for run in range(self.args.repeat):
            for family in systems:
                # background tasks over priorities 0-9, interleaved
                full = self.template(family, 'priority%d' % pending, lambda app: app.fill(
                    lambda i: app.prio.s(i, priority=i % 10), pending))
                r = self.priority(family, full, urgent, rng)
                self.record(family, 'prio_delay_p50', r['delay']['p50'], r)
                self.record(family, 'prio_delay_max', r['delay']['max'])
                self.record(family, 'prio_return_p50', r['from_return']['p50'])
                self.record(family, 'prio_overtaken_p50', r['overtaken']['p50'])
                self.record(family, 'prio_overtaken_max', r['overtaken']['max'])
                self.record(family, 'prio_after_return_max', r['after_return']['max'])
                self.record(family, 'prio_rate', r['background_rate'])
                L.log('priority, %s, run %d: delay p50 %.2f ms (max %.2f), overtaken p50 %g '
                      '(max %g; after the return: max %g), background %.0f/s' % (
                          family, run + 1, r['delay']['p50'], r['delay']['max'],
                          r['overtaken']['p50'], r['overtaken']['max'],
                          r['after_return']['max'], r['background_rate'] or 0))

    def section_workers(self, systems: List[str]) -> None:
        n = self.args.tasks
        for w, kind in self.args.workers:
            key = C.workers_key(w, kind)
            self.row('drain_' + key, 'drain, %d %s worker%s (tasks/s)'
                     % (w, kind, '' if w == 1 else 's'), 'rate')
        for w, kind in self.args.workers:
            key = C.workers_key(w, kind)
            self.row('cpu_' + key, 'consumer CPU per task, %d %s (µs)' % (w, kind[0]), 'cost')
        for run in range(self.args.repeat):
            for w, kind in self.args.workers:
                key = C.workers_key(w, kind)
                for family in systems:
                    full = self.template(family, 'depth0+%d' % n,
                                         lambda app: app.fill(app.noop.s, n))
                    r = self.drain(family, full, n, w, kind, run)
                    self.record(family, 'drain_' + key, r['rate'])
                    self.record(family, 'cpu_' + key, r['cpu_per_task_us'])
                    L.log('workers %s, %s, run %d: %.0f tasks/s, %.1f µs CPU/task'
                          % (key, family, run + 1, r['rate'], r['cpu_per_task_us']))

    def section_eta(self, systems: List[str], rng: random.Random) -> None:
        e, m = self.args.scheduled, self.args.eta
        self.row('eta_p50', 'eta lateness p50 (ms), %s scheduled later' % human(e), 'cost')
        self.row('eta_p99', 'eta lateness p99 (ms)', 'cost')
        self.row('eta_max', 'eta lateness max (ms)', 'cost')
        for run in range(self.args.repeat):
            for family in systems:
                full = self.template(family, 'schedule%d' % e,
                                     lambda app: app.fill_schedule(e, FAR))
                r = self.eta(family, full, m, rng)
                self.record(family, 'eta_p50', r['p50'], r)
                self.record(family, 'eta_p99', r['p99'])
                self.record(family, 'eta_max', r['max'])
                L.log('eta, %s, run %d: p50 %.2f ms, p99 %.2f ms'
                      % (family, run + 1, r['p50'], r['p99']))


# ------------------------------------------------------------------------------ targets

def targets(args: argparse.Namespace) -> Dict[str, Tuple[str, Check]]:
    t: Dict[str, Tuple[str, Check]] = {
        'prio_delay_p50': ('≤ 1 ms', lambda s, h, f: s <= 1.0),
        'prio_overtaken_max': ('≤ 1', lambda s, h, f: s <= 1),
        'eta_p50': ('≤ 0.5 ms', lambda s, h, f: s <= 0.5),
        'eta_p99': ('≤ 2 ms', lambda s, h, f: s <= 2.0),
    }
    for payload in args.payloads:
        if payload >= 10000:
            t['wal_p%d' % payload] = ('≤ 1.2', lambda s, h, f: s <= 1.2)
    for payload, times in ((10000, 10), (1000000, 3)):
        t['drain_p%d' % payload] = ('≥ %d× huey' % times,
                                    lambda s, h, f, x=times: h is not None and s >= x * h)
    one = C.workers_key(*args.workers[0]) if args.workers else None
    for w, kind in args.workers[1:]:
        key = C.workers_key(w, kind)
        t['drain_' + key] = ('≥ %s' % one, lambda s, h, f, o=one:
                             s >= f['sqlq'].get('drain_' + str(o), 0))
        if key == '4p':
            t['cpu_4p'] = ('≤ 1.2 × %s' % one, lambda s, h, f, o=one:
                           s <= 1.2 * f['sqlq'].get('cpu_' + str(o), float('inf')))
    return t


def table(bench: Scale, args: argparse.Namespace, systems: List[str]) -> str:
    goals = targets(args)
    head = ['figure'] + systems + (['sqlq / huey'] if len(systems) == 2 else []) + ['target']
    lines = ['| ' + ' | '.join(head) + ' |', '|---' + '|---:' * (len(head) - 2) + '|---|']
    f = bench.figures
    for key, label, kind in bench.rows:
        values = [f[s].get(key) for s in systems]
        if all(v is None for v in values):
            continue
        cells = [label] + [fmt(v, kind) for v in values]
        if len(systems) == 2:
            a, b = values
            cells.append(L.fmt_ratio(a / b) if a and b else '—')
        goal = goals.get(key)
        cell = ''
        if goal is not None and f['sqlq'].get(key) is not None:
            ok = goal[1](f['sqlq'][key], f['huey'].get(key), f)
            cell = '%s %s' % (goal[0], '✓' if ok else '✗')
        cells.append(cell)
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def fmt(value: Optional[float], kind: str) -> str:
    if value is None:
        return '—'
    if kind == 'rate':
        return C.fmt_value(value, 'rate')
    return L.fmt(value)


# --------------------------------------------------------------------------------- child

def child_enqueue(spec: str) -> int:
    """In a measuring subprocess: ``family,n,payload,db`` -> one JSON line on stdout."""
    family, n_text, payload_text, db = spec.split(',', 3)
    n, payload = int(n_text), int(payload_text)
    app = App(family, db)
    data = b'x' * payload
    call = (lambda i: app.noop(i)) if not payload else (lambda i: app.sized(i, data))
    for i in range(min(C.WARMUP_CALLS, n)):
        call(i)
    t0 = time.perf_counter()
    for i in range(n):
        call(i)
    seconds = time.perf_counter() - t0
    app.close()
    print(json.dumps({'seconds': seconds, 'rate': n / seconds}))
    return 0


# ---------------------------------------------------------------------------------- main

def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description='sqlq vs huey SqliteHuey at every size: queue depth, payload size, '
                    'priority overtaking, workers 1-8, eta lateness with a big schedule.')
    parser.add_argument('--quick', action='store_true', help='CI mode: small sizes')
    parser.add_argument('-n', '--tasks', type=int, default=None,
                        help='tasks per enqueue/drain (default 20000; quick 2000)')
    parser.add_argument('--depths', type=sizes, default=None,
                        help='pending tasks before the measured ones (default 0,100k,1M)')
    parser.add_argument('--payloads', type=sizes, default=None,
                        help='payload sizes in bytes (default 100,10k,1M)')
    parser.add_argument('--payload-bytes', type=size, default=None,
                        help='largest total payload per measurement (default 200M)')
    parser.add_argument('--pending', type=size, default=None,
                        help='background tasks of the priority scenario (default 100k)')
    parser.add_argument('--urgent', type=int, default=None, help='urgent tasks (default 20)')
    parser.add_argument('--workers', type=C.parse_workers, default=None,
                        help='worker sets, e.g. 1t,2p,4p,8p (the default)')
    parser.add_argument('--scheduled', type=size, default=None,
                        help='tasks waiting in the schedule for an hour (default 100k)')
    parser.add_argument('--eta', type=int, default=None,
                        help='tasks whose lateness is measured (default 20)')
    parser.add_argument('--repeat', type=int, default=None,
                        help='runs per figure, the median is shown (default 2; quick 1)')
    parser.add_argument('--only', choices=SYSTEMS, default=None)
    parser.add_argument('--skip', default='',
                        help='sections to skip: depth, payload, priority, workers, eta')
    parser.add_argument('--quiet-consumers', action='store_true',
                        help='run both consumers with -q (no per-task log lines)')
    parser.add_argument('--drain-timeout', type=float, default=None)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--json', metavar='PATH', default=None)
    parser.add_argument('--sqlq-src', metavar='DIR', default=None,
                        help='measure the sqlq package in DIR instead of this tree')
    parser.add_argument('--child-enqueue', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.sqlq_src:
        L.ROOT = os.path.abspath(args.sqlq_src)
    if L.ROOT not in sys.path:
        sys.path.insert(0, L.ROOT)
    if args.child_enqueue:
        return child_enqueue(args.child_enqueue)
    defaults = QUICK if args.quick else FULL
    for name, value in defaults.items():
        if getattr(args, name, None) is None:
            parsers = {'depths': sizes, 'payloads': sizes, 'workers': C.parse_workers}
            setattr(args, name, parsers[name](value) if name in parsers else value)
    args.drain_timeout = args.drain_timeout or max(60.0, args.tasks / 200.0)
    skip = {s.strip() for s in args.skip.split(',') if s.strip()}
    sections = ('depth', 'payload', 'priority', 'workers', 'eta')
    if skip - set(sections):
        parser.error('--skip takes %s' % ', '.join(sections))
    if not sys.platform.startswith('linux'):
        parser.error('needs Linux (/proc for CPU time, system-wide CLOCK_MONOTONIC)')
    systems = [s for s in SYSTEMS if args.only in (None, s)]
    import importlib.util
    if importlib.util.find_spec('huey') is None:
        if args.only == 'huey':
            parser.error("huey is not installed: pip install -e '.[bench]'")
        L.log("huey is not installed (pip install -e '.[bench]'): measuring sqlq only")
        systems = ['sqlq']

    env = L.environment()
    env['probe_before'] = L.machine_probe()
    workdir = tempfile.mkdtemp(prefix='sqlq-scale-')
    bench = Scale(args, workdir)
    rng = random.Random(args.seed)
    began = time.monotonic()
    failed: Optional[str] = None

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt
    previous_term = signal.signal(signal.SIGTERM, on_term)
    try:
        for section in sections:
            if section in skip:
                continue
            L.log('== %s' % section)
            method = getattr(bench, 'section_' + section)
            if section in ('priority', 'eta'):
                method(systems, rng)
            else:
                method(systems)
    except L.BenchError as exc:
        failed = str(exc)
        L.log('FAILED: %s' % exc)
    except KeyboardInterrupt:
        L.log('interrupted')
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - began
    env['probe_after'] = L.machine_probe()

    print()
    print('sqlq vs huey at scale — %s; N=%d, %d repeat(s); %s × %d; Python %s; SQLite %s '
          '(apsw, sqlq), %s (stdlib, huey); huey %s; sqlq %s (%s); %.0f s'
          % (env['date'], args.tasks, args.repeat, env['cpu'], env['cpus'], env['python'],
             env.get('sqlite_apsw'), env['sqlite_stdlib'], env.get('huey', '—'),
             env.get('sqlq'), env.get('sqlq_commit'), elapsed))
    print(L.describe_probe(env['probe_before'], env['probe_after']))
    print()
    print(table(bench, args, systems))
    print()
    print(NOTES.format(repeat=args.repeat, far=FAR, huey_tuned=' '.join(C.HUEY_TUNED)),
          flush=True)
    if failed:
        print('\nFAILED: %s' % failed)
    if args.json:
        options = {k: v for k, v in vars(args).items() if k != 'child_enqueue'}
        with open(args.json, 'w') as f:
            json.dump({'environment': env, 'options': options, 'elapsed_s': elapsed,
                       'figures': bench.figures, 'runs': bench.runs, 'failed': failed},
                      f, indent=2, default=str)
    return 1 if failed else 0


NOTES = """\
Ratios are sqlq ÷ huey: above 1× is better for rates (tasks/s), below 1× for costs (ms, µs,
bytes). Medians of {repeat} run(s). Enqueues: one call (one commit) per task in a fresh
subprocess, after a warm-up. Drains: bench/compare.py's (the consumer command on a copy of a
pre-filled database, from the first task's start to the N-th result); huey's consumer runs with
`{huey_tuned}`, sqlq's with its defaults. WAL bytes: the WAL's growth over M tasks enqueued
in one transaction and drained by one worker in the bench process (sqlq's Worker; huey's
consumer in threads), never checkpointed, ÷ M ÷ payload. Priority: background tasks of
priorities 0-9, urgent ones of priority 10, each enqueued 10-30 ms after the previous one
started; "started after it" counts background tasks whose start falls between the urgent
task's enqueue and its start. eta: latency.py's eta phase; the other tasks are due in
{far:.0f} s."""


if __name__ == '__main__':
    sys.exit(main())
