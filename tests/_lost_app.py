"""The application module ``sqlq consume`` loads in tests/test_nothing_lost.py
(``sqlq consume _lost_app.queue`` with ``tests/`` on the path), plus that test's harness.

Configuration comes from the environment, so each test gets its own files:

* ``SQLQ_LOST_DB``: the SQLite file of ``queue`` (without it ``queue`` is None);
* ``SQLQ_LOST_LEDGER``: a file tasks append one tab-separated line to
  (``event pid time key``), each with one O_APPEND ``write`` so lines written by several
  processes never interleave.

Ledger events of ``lost.record``: ``start`` when the body begins, ``body`` when it ends (both
before the outcome commits) and ``settled`` from a post-execute hook, i.e. after the outcome
and the release of the claim were committed. A run with ``start`` but no ``settled`` was in
flight when its process died.

Every task has an explicit name so the test process (``tests._lost_app``) and the consumer
(``_lost_app``) agree on it. ``build(path, extra=True)`` also registers ``lost.unknown``,
which the consumer's queue does not know.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

DB_ENV = 'SQLQ_LOST_DB'
LEDGER_ENV = 'SQLQ_LOST_LEDGER'
QUEUE_NAME = 'lost'


def record(event: str, key: object = '') -> None:
    """Append ``event pid time key`` to the ledger (no-op without one)."""
    path = os.environ.get(LEDGER_ENV)
    if not path:
        return
    line = '%s\t%d\t%.6f\t%s\n' % (event, os.getpid(), time.time(), key)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_ledger(path: str) -> List[Tuple[str, int, float, str]]:
    """Complete ledger lines as ``(event, pid, time, key)``."""
    try:
        with open(path) as fh:
            text = fh.read()
    except FileNotFoundError:
        return []
    lines = []
    for line in text.split('\n')[:-1]:  # a partial last line has no newline yet
        event, pid, ts, key = line.split('\t', 3)
        lines.append((event, int(pid), float(ts), key))
    return lines


class Unstorable:
    """A value that cannot be pickled: its ``__reduce__`` raises."""

    def __reduce__(self):
        raise RuntimeError('Unstorable refuses to be pickled')


def build(path: str, extra: bool = False):
    """A queue on ``path`` with the test tasks registered (``extra``: also ``lost.unknown``)."""
    from sqlq import SqliteQueue

    q = SqliteQueue(path, name=QUEUE_NAME)

    @q.task(name='lost.record')
    def record_key(key, work=0.0):
        record('start', key)
        if work:
            time.sleep(work)  # simulated work (keeps a task in flight for a while)
        record('body', key)
        return key

    @q.post_execute()
    def settled(task, value, exception):
        if task.name == 'lost.record':
            record('settled', task.args[0])

    def block(tag, release_path, limit=30.0):
        record('start', tag)
        deadline = time.monotonic() + limit
        while not os.path.exists(release_path):
            if time.monotonic() > deadline:
                record('gave-up', tag)
                return 'gave up'
            time.sleep(0.02)
        record('finish', tag)
        return 'released %s' % tag

    block_normal = q.task(name='lost.block')(block)
    block_once = q.task(name='lost.block_once', at_most_once=True)(block)

    @q.task(name='lost.echo')
    def echo(tag):
        record('echo', tag)
        return [tag, os.getpid()]

    @q.task(name='lost.die')
    def die(code):
        record('die', code)
        os._exit(code)

    @q.task(name='lost.unstorable')
    def unstorable():
        record('unstorable')
        return Unstorable()

    tasks = dict(record=record_key, block=block_normal, block_once=block_once, echo=echo,
                 die=die, unstorable=unstorable)
    if extra:
        @q.task(name='lost.unknown')
        def unknown(tag):
            record('unknown', tag)
            return tag
        tasks['unknown'] = unknown

    from types import SimpleNamespace
    q.app = SimpleNamespace(**tasks)
    return q


queue = build(os.environ[DB_ENV]) if os.environ.get(DB_ENV) else None


# -- the test side ------------------------------------------------------------------------------
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT_DIR = os.path.dirname(TESTS_DIR)


from tests._helpers import wait_for  # noqa: E402  (shared with the other harness)

def _alive(pid: int) -> bool:
    try:
        with open('/proc/%d/stat' % pid) as fh:
            return fh.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


class Proc:
    """A subprocess started in its own session, so ``kill()`` reaches its whole process
    group (a consumer and its forked workers)."""

    def __init__(self, harness: 'Harness', name: str, args: List[str]) -> None:
        self.harness = harness
        self.name = name
        self.args = args
        self.out_path = os.path.join(harness.dir, '%s.out' % name)
        with open(self.out_path, 'wb') as out:
            self.proc = subprocess.Popen(args, cwd=harness.dir, env=harness.env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.proc.pid  # == its process group id

    def output(self) -> str:
        try:
            with open(self.out_path, errors='replace') as fh:
                return fh.read()
        except FileNotFoundError:
            return ''

    def group_pids(self) -> List[int]:
        """Live processes of this process group."""
        pids = []
        for entry in os.listdir('/proc'):
            if not entry.isdigit():
                continue
            try:
                with open('/proc/%s/stat' % entry) as fh:
                    fields = fh.read().rsplit(')', 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.pid and fields[0] != 'Z':
                pids.append(int(entry))
        return pids

    def kill(self) -> None:
        """SIGKILL the whole process group and reap the leader."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError('%s did not exit within %ss\n%s'
                                 % (self.name, timeout, self.output()[-3000:])) from None


class ConsumerProcess(Proc):
    """``python -m sqlq consume _lost_app.queue -l LOG ...``."""

    def __init__(self, harness: 'Harness', name: str, options: Tuple[str, ...]) -> None:
        self.log_path = os.path.join(harness.dir, '%s.log' % name)
        super().__init__(harness, name, [sys.executable, '-m', 'sqlq', 'consume',
                                         '_lost_app.queue', '-l', self.log_path]
                         + list(options))

    def log(self) -> str:
        try:
            with open(self.log_path, errors='replace') as fh:
                return fh.read()
        except FileNotFoundError:
            return ''

    def describe(self) -> str:
        return '--- %s (%s) log:\n%s\n--- output:\n%s' % (
            self.name, ' '.join(self.args[2:]), self.log()[-4000:], self.output()[-2000:])

    def wait_log(self, text: str, count: int = 1, timeout: float = 15.0) -> None:
        wait_for(lambda: self.log().count(text) >= count, timeout,
                 '%r x%d in the log of %s' % (text, count, self.name), self.describe)

    def wait_ready(self) -> None:
        self.wait_log('The following tasks are available')

    def worker_pids(self) -> List[int]:
        return [pid for pid in self.group_pids() if pid != self.pid]


class Harness:
    """A database, a ledger and the processes of one test (all killed by ``close``)."""

    def __init__(self, directory: str) -> None:
        self.dir = str(directory)
        self.db = os.path.join(self.dir, 'lost.db')
        self.ledger_path = os.path.join(self.dir, 'ledger.txt')
        self.env = dict(os.environ)
        self.env['PYTHONPATH'] = os.pathsep.join(
            [ROOT_DIR, TESTS_DIR] + [p for p in os.environ.get('PYTHONPATH', '').split(
                os.pathsep) if p])
        self.env[DB_ENV] = self.db
        self.env[LEDGER_ENV] = self.ledger_path
        os.environ[LEDGER_ENV] = self.ledger_path  # post-execute hooks run in this process too
        self.queue = build(self.db)
        self.procs: List[Proc] = []
        self._count = 0

    def start(self, *options: str, name: Optional[str] = None,
              ready: bool = True) -> ConsumerProcess:
        self._count += 1
        consumer = ConsumerProcess(self, name or 'consumer-%d' % self._count, options)
        self.procs.append(consumer)
        if ready:
            consumer.wait_ready()
        return consumer

    def run_python(self, name: str, code: str) -> Proc:
        proc = Proc(self, name, [sys.executable, '-c', code])
        self.procs.append(proc)
        return proc

    @property
    def app(self):
        return self.queue.app

    def release_path(self, tag: str) -> str:
        return os.path.join(self.dir, 'release-%s' % tag)

    def release(self, tag: str) -> None:
        open(self.release_path(tag), 'w').close()

    def ledger(self, event: Optional[str] = None) -> List[Tuple[str, int, float, str]]:
        return [l for l in read_ledger(self.ledger_path) if event is None or l[0] == event]

    def count(self, event: str) -> int:
        """How many complete ``event`` lines the ledger has (cheap enough to poll)."""
        try:
            with open(self.ledger_path, 'rb') as fh:
                text = fh.read()
        except FileNotFoundError:
            return 0
        marker = event.encode() + b'\t'
        return text.count(b'\n' + marker) + text.startswith(marker)

    def keys(self, event: str) -> Dict[str, int]:
        counts: Dict[str, int] = {}
        for line in self.ledger(event):
            counts[line[3]] = counts.get(line[3], 0) + 1
        return counts

    def close(self) -> None:
        for proc in self.procs:
            try:
                proc.kill()
            except Exception:
                pass
        os.environ.pop(LEDGER_ENV, None)
        self.queue.close()
