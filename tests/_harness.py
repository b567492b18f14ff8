"""The one subprocess harness: real ``sqlq consume`` (and plain ``python -c``) processes on the
files of one test, a ledger they write to, and a clean kill of all of them at the end.

The applications the consumers load (``tests/apps/*.py``) hold only their tasks; they read
their configuration from the environment the harness sets, so each test gets its own files:

* ``SQLQ_TEST_DB``: the SQLite file of the app's ``queue`` (without it, and without
  ``SQLQ_TEST_REDIS``, ``queue`` is None);
* ``SQLQ_TEST_REDIS``: a Redis URL: ``queue`` is then a RedisQueue on that server instead;
* ``SQLQ_TEST_LEDGER``: a file tasks, hooks and signal receivers append one line to with
  :func:`record` (``event pid time detail...``, tab-separated), each with one O_APPEND
  ``write`` so that lines written by several processes never interleave;
* ``SQLQ_TEST_FAKE_CLOCK``: ``fake_start,real_start,speed``: the queue's clock then reads
  ``fake_start + (time.time() - real_start) * speed``, the same in every process.

Every process is started in its own session, so that ``kill()`` reaches its whole process
group (a consumer and its forked workers) with one ``killpg``. Every task has an explicit name,
so the test process and the consumers agree on it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Tuple

from tests._helpers import ROOT_DIR, wait_for

if TYPE_CHECKING:  # pragma: no cover
    from sqlq.api import Queue

DB_ENV = 'SQLQ_TEST_DB'
REDIS_ENV = 'SQLQ_TEST_REDIS'
LEDGER_ENV = 'SQLQ_TEST_LEDGER'
CLOCK_ENV = 'SQLQ_TEST_FAKE_CLOCK'

#: One ledger line: ``(event, pid, time, detail...)``; the details are strings.
LedgerLine = Tuple[Any, ...]


# -- the app side: configuration, ledger, clock -------------------------------------------------
def record(event: str, *detail: object) -> None:
    """Append ``event pid time detail...`` to the ledger (no-op without one)."""
    path = os.environ.get(LEDGER_ENV)
    if not path:
        return
    fields = [event, str(os.getpid()), '%.6f' % time.time()] + [str(d) for d in detail]
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, ('\t'.join(fields) + '\n').encode())
    finally:
        os.close(fd)


def read_ledger(path: str) -> List[LedgerLine]:
    """Complete ledger lines as ``(event, pid, time, detail...)``."""
    try:
        with open(path) as fh:
            text = fh.read()
    except FileNotFoundError:
        return []
    lines: List[LedgerLine] = []
    for line in text.split('\n')[:-1]:  # a partial last line has no newline yet
        event, pid, ts, *detail = line.split('\t')
        lines.append((event, int(pid), float(ts), *detail))
    return lines


def fake_clock_spec(fake_start: float, speed: float, real_start: Optional[float] = None) -> str:
    """The ``SQLQ_TEST_FAKE_CLOCK`` value of a clock starting now at ``fake_start``."""
    return '%r,%r,%r' % (float(fake_start), float(time.time() if real_start is None
                                                  else real_start), float(speed))


def make_clock(spec: Optional[str]) -> Optional[Callable[[], float]]:
    """The clock a ``SQLQ_TEST_FAKE_CLOCK`` value describes (None for the real one)."""
    if not spec:
        return None
    fake_start, real_start, speed = (float(part) for part in spec.split(','))

    def clock() -> float:
        return fake_start + (time.time() - real_start) * speed
    return clock


# Task bodies both apps register (under their own names).
def echo(tag: object) -> List[object]:
    """Records ``echo tag``; returns ``[tag, pid]``."""
    record('echo', tag)
    return [tag, os.getpid()]


def block(tag: str, release_path: str, limit: float = 30.0) -> str:
    """Runs until ``release_path`` exists (in short slices, so a thread worker can be
    interrupted), at most ``limit`` seconds; records ``start``, then ``finish`` or ``gave-up``."""
    record('start', tag)
    deadline = time.monotonic() + limit
    while not os.path.exists(release_path):
        if time.monotonic() > deadline:
            record('gave-up', tag)
            return 'gave up'
        time.sleep(0.02)
    record('finish', tag)
    return 'released %s' % tag


def die(code: int) -> None:
    """Records ``die code`` and ends its process at once with exit status ``code``."""
    record('die', code)
    os._exit(code)


def open_queue(name: str, path: str, clock: Optional[Callable[[], float]] = None,
               redis_url: Optional[str] = None, **options: Any) -> 'Queue':
    """A SqliteQueue on ``path``, or a RedisQueue on ``redis_url`` if given."""
    from sqlq import RedisQueue, SqliteQueue
    if redis_url:
        return RedisQueue(name, url=redis_url, clock=clock, **options)
    return SqliteQueue(path, name=name, clock=clock, **options)


def queue_from_env(build: Callable[..., 'Queue']) -> Optional['Queue']:
    """``build(path, clock, redis_url)`` as the environment configures it, or None if it names
    no database (a test process imports the app without a queue of its own)."""
    path, redis_url = os.environ.get(DB_ENV, ''), os.environ.get(REDIS_ENV)
    if not path and not redis_url:
        return None
    return build(path, make_clock(os.environ.get(CLOCK_ENV)), redis_url)


# -- the test side: processes -------------------------------------------------------------------
def _process_stats() -> Iterator[Tuple[int, List[str]]]:
    """``(pid, fields after the command name)`` of every process in /proc."""
    for entry in os.listdir('/proc') if os.path.isdir('/proc') else ():
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as fh:
                fields = fh.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        yield int(entry), fields


def _read(path: str) -> str:
    try:
        with open(path, errors='replace') as fh:
            return fh.read()
    except FileNotFoundError:
        return ''


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
        return _read(self.out_path)

    def group_pids(self) -> List[int]:
        """Live processes of this process group."""
        return [pid for pid, fields in _process_stats()
                if int(fields[2]) == self.pid and fields[0] != 'Z']

    def signal(self, signum: int) -> None:
        """Send ``signum`` to this process alone (not to its group)."""
        self.proc.send_signal(signum)

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

    def wait_exit(self, timeout: float = 15.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError('%s did not exit within %ss\n%s'
                                 % (self.name, timeout, self.describe())) from None

    def describe(self) -> str:
        return '--- %s output:\n%s' % (self.name, self.output()[-3000:])


class ConsumerProcess(Proc):
    """``python -m sqlq consume <app>.queue -l LOG ...``."""

    def __init__(self, harness: 'Harness', name: str, options: Tuple[str, ...]) -> None:
        self.log_path = os.path.join(harness.dir, '%s.log' % name)
        super().__init__(harness, name, [sys.executable, '-m', 'sqlq', 'consume',
                                         harness.target, '-l', self.log_path] + list(options))

    def log(self) -> str:
        return _read(self.log_path)

    def describe(self) -> str:
        return '--- %s (%s) log:\n%s\n--- output:\n%s\n--- ledger:\n%s' % (
            self.name, ' '.join(self.args[2:]), self.log()[-4000:], self.output()[-2000:],
            '\n'.join('\t'.join(str(f) for f in line) for line in self.harness.ledger()[-40:]))

    def wait_log(self, text: str, count: int = 1, timeout: float = 15.0) -> None:
        wait_for(lambda: self.log().count(text) >= count, timeout,
                 '%r x%d in the log of %s' % (text, count, self.name), self.describe)

    def wait_ready(self, count: int = 1) -> None:
        self.wait_log('The following tasks are available', count)

    def worker_pids(self) -> List[int]:
        return [pid for pid in self.group_pids() if pid != self.pid]


class Harness:
    """A database, a ledger and the processes of one test (all killed by ``close``).

    ``app`` is the application module the consumers load (``tests.apps.consumer_app``...):
    its ``build(path, clock, redis_url)`` registers the tasks on a queue, and the harness
    keeps one such queue (``queue``) for the test process itself.
    """

    def __init__(self, directory: object, app: ModuleType, clock_spec: Optional[str] = None,
                 redis_url: Optional[str] = None) -> None:
        self.dir = str(directory)
        self.target = app.__name__ + '.queue'
        self.db = os.path.join(self.dir, 'app.db')
        self.ledger_path = os.path.join(self.dir, 'ledger.txt')
        self.env = dict(os.environ)
        self.env['PYTHONPATH'] = os.pathsep.join(
            [ROOT_DIR] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p])
        self.env[DB_ENV] = self.db
        self.env[LEDGER_ENV] = self.ledger_path
        for name, value in ((REDIS_ENV, redis_url), (CLOCK_ENV, clock_spec)):
            if value:
                self.env[name] = value
            else:
                self.env.pop(name, None)
        # Tasks and hooks run in this process too (a test's own execute): same ledger.
        self._saved_ledger_env = os.environ.get(LEDGER_ENV)
        os.environ[LEDGER_ENV] = self.ledger_path
        self.clock = make_clock(clock_spec)
        self.queue: 'Queue' = app.build(self.db, self.clock, redis_url)
        self.procs: List[Proc] = []

    def start(self, *options: str, name: Optional[str] = None,
              ready: bool = True) -> ConsumerProcess:
        consumer = ConsumerProcess(self, name or 'consumer-%d' % (len(self.procs) + 1), options)
        self.procs.append(consumer)
        if ready:
            consumer.wait_ready()
        return consumer

    def run_python(self, name: str, code: str) -> Proc:
        proc = Proc(self, name, [sys.executable, '-c', code])
        self.procs.append(proc)
        return proc

    @property
    def app(self) -> Any:
        """The app's task wrappers (``queue.app``: a namespace built by the app)."""
        return self.queue.app  # type: ignore[attr-defined]

    def release_path(self, tag: str) -> str:
        return os.path.join(self.dir, 'release-%s' % tag)

    def release(self, tag: str) -> None:
        open(self.release_path(tag), 'w').close()

    def ledger(self, event: Optional[str] = None) -> List[LedgerLine]:
        return [line for line in read_ledger(self.ledger_path)
                if event is None or line[0] == event]

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
        """How many ``event`` lines each first detail (a task's key) has."""
        counts: Dict[str, int] = {}
        for line in self.ledger(event):
            counts[line[3]] = counts.get(line[3], 0) + 1
        return counts

    def worker_pids_of(self, parent: int) -> List[int]:
        """Live or not, the processes whose parent is ``parent``."""
        return [pid for pid, fields in _process_stats() if int(fields[1]) == parent]

    def close(self) -> None:
        for proc in self.procs:
            try:
                proc.kill()
            except Exception:
                pass
        if self._saved_ledger_env is None:
            os.environ.pop(LEDGER_ENV, None)
        else:
            os.environ[LEDGER_ENV] = self._saved_ledger_env
        self.queue.close()
