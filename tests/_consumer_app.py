"""The application module that ``sqlq consume`` loads in tests/test_consumer_cli.py and
tests/test_periodic.py (``sqlq consume _consumer_app.queue`` with ``tests/`` on the path).

Configuration comes from the environment, so each test gets its own files:

* ``SQLQ_TEST_DB``: the SQLite file of ``queue`` (without it ``queue`` is None; tests build
  their own handle on the file with :func:`build`);
* ``SQLQ_TEST_REDIS``: a Redis URL: ``queue`` is then a RedisQueue on that server instead;
* ``SQLQ_TEST_LEDGER``: a file every task, signal receiver and validate_datetime call appends
  one tab-separated line to (``event pid detail...``), written with one O_APPEND write so
  lines from several processes never interleave;
* ``SQLQ_TEST_FAKE_CLOCK``: ``fake_start,real_start,speed``: the queue's clock then reads
  ``fake_start + (time.time() - real_start) * speed``, the same in every process.

Every task has an explicit name, so the test process (importing ``tests._consumer_app``) and
the consumer (importing ``_consumer_app``) agree on it.
"""
from __future__ import annotations

import os
import time
from typing import Callable, List, Optional, Tuple

DB_ENV = 'SQLQ_TEST_DB'
REDIS_ENV = 'SQLQ_TEST_REDIS'
LEDGER_ENV = 'SQLQ_TEST_LEDGER'
CLOCK_ENV = 'SQLQ_TEST_FAKE_CLOCK'
QUEUE_NAME = 'app'

not_a_queue = 42  # ``sqlq consume _consumer_app.not_a_queue`` must be refused


def record(event: str, *detail: object) -> None:
    """Append one ledger line (no-op without a ledger)."""
    path = os.environ.get(LEDGER_ENV)
    if not path:
        return
    line = '\t'.join([event, str(os.getpid())] + [str(d) for d in detail]) + '\n'
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_ledger(path: str) -> List[Tuple[str, ...]]:
    """The ledger's lines as tuples (event, pid, detail...)."""
    try:
        with open(path) as fh:
            return [tuple(line.rstrip('\n').split('\t')) for line in fh if line.endswith('\n')]
    except FileNotFoundError:
        return []


def fake_clock_spec(fake_start: float, speed: float, real_start: Optional[float] = None) -> str:
    return '%r,%r,%r' % (float(fake_start), float(time.time() if real_start is None
                                                  else real_start), float(speed))


def make_clock(spec: Optional[str]) -> Optional[Callable[[], float]]:
    if not spec:
        return None
    fake_start, real_start, speed = (float(part) for part in spec.split(','))

    def clock() -> float:
        return fake_start + (time.time() - real_start) * speed
    return clock


def periodic_minute_matches(dt) -> bool:
    """Two minutes out of three (so some minutes must NOT fire)."""
    return dt.minute % 3 != 2


def build(path: str, clock: Optional[Callable[[], float]] = None,
          redis_url: Optional[str] = None):
    """A queue on ``path`` (on the Redis server ``redis_url`` if given) with the test tasks
    registered."""
    from sqlq import RedisQueue, SqliteQueue
    from sqlq.signals import SIGNAL_INTERRUPTED, SIGNAL_RETRYING, SIGNAL_TIMEOUT

    if redis_url:
        q = RedisQueue(QUEUE_NAME, url=redis_url, clock=clock, store_intermediate_errors=False)
    else:
        q = SqliteQueue(path, name=QUEUE_NAME, clock=clock, store_intermediate_errors=False)

    @q.task(name='app.echo')
    def echo(tag):
        record('echo', tag)
        return [tag, os.getpid()]

    @q.task(name='app.block')
    def block(tag, release_path, limit=30.0):
        """Runs until ``release_path`` exists (in short slices, so a thread worker can be
        interrupted), at most ``limit`` seconds."""
        record('start', tag)
        deadline = time.monotonic() + limit
        while not os.path.exists(release_path):
            if time.monotonic() > deadline:
                record('gave-up', tag)
                return 'gave up'
            time.sleep(0.02)
        record('finish', tag)
        return 'released %s' % tag

    @q.task(name='app.die')
    def die(code):
        record('die', code)
        os._exit(code)

    @q.task(name='app.sleepy', timeout=0.5, retries=1)
    def sleepy():
        record('sleepy')
        time.sleep(30)
        return 'slept'

    @q.task(name='app.started_at', context=True)
    def started_at(task=None):
        now = q.clock()
        record('started_at', task.id, now)
        return now

    @q.periodic_task(lambda dt: _validate(dt), name='app.periodic')
    def periodic():
        record('periodic', q.clock())

    @q.signal(SIGNAL_INTERRUPTED, SIGNAL_TIMEOUT, SIGNAL_RETRYING)
    def on_signal(signal, task, *extra):
        record('signal', signal, task.name, task.id)

    from types import SimpleNamespace
    q.app = SimpleNamespace(echo=echo, block=block, die=die, sleepy=sleepy,
                            started_at=started_at, periodic=periodic)
    return q


def _validate(dt) -> bool:
    if not os.environ.get(CLOCK_ENV):
        return False  # periodic firing only in the tests that run a fake clock
    matches = periodic_minute_matches(dt)
    record('validate', dt.isoformat(), int(matches))
    return matches


queue = build(os.environ.get(DB_ENV, ''), make_clock(os.environ.get(CLOCK_ENV)),
              os.environ.get(REDIS_ENV)) \
    if os.environ.get(DB_ENV) or os.environ.get(REDIS_ENV) else None


# -- the test side: consumer processes and polling ---------------------------------------------
# (kept here so tests/test_consumer_cli.py and tests/test_periodic.py share it; the consumer
# imports this module too, but nothing below runs at import time.)

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT_DIR = os.path.dirname(TESTS_DIR)


from tests._helpers import wait_for  # noqa: E402  (shared with the other harness)

class ConsumerProcess:
    """One ``python -m sqlq consume _consumer_app.queue -l LOG ...`` subprocess."""

    def __init__(self, harness: 'Harness', name: str, options: Tuple[str, ...]) -> None:
        import subprocess
        import sys
        self.harness = harness
        self.name = name
        self.log_path = os.path.join(harness.dir, '%s.log' % name)
        self.out_path = os.path.join(harness.dir, '%s.out' % name)
        self.args = [sys.executable, '-m', 'sqlq', 'consume', '_consumer_app.queue',
                     '-l', self.log_path] + list(options)
        with open(self.out_path, 'wb') as out:
            self.proc = subprocess.Popen(self.args, cwd=harness.dir, env=harness.env,
                                         stdout=out, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def log(self) -> str:
        try:
            with open(self.log_path) as fh:
                return fh.read()
        except FileNotFoundError:
            return ''

    def output(self) -> str:
        with open(self.out_path, errors='replace') as fh:
            return fh.read()

    def describe(self) -> str:
        return '--- %s (%s) log:\n%s\n--- output:\n%s\n--- ledger:\n%s' % (
            self.name, ' '.join(self.args[2:]), self.log()[-4000:], self.output()[-2000:],
            '\n'.join('\t'.join(l) for l in self.harness.ledger()[-40:]))

    def wait_log(self, text: str, count: int = 1, timeout: float = 15.0) -> None:
        wait_for(lambda: self.log().count(text) >= count, timeout,
                 '%r x%d in the log of %s' % (text, count, self.name), self.describe)

    def wait_ready(self, count: int = 1) -> None:
        self.wait_log('The following tasks are available', count)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait_exit(self, timeout: float = 15.0) -> int:
        import subprocess
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError('%s did not exit within %ss\n%s'
                                 % (self.name, timeout, self.describe())) from None

    def kill(self) -> None:
        # A SIGKILLed consumer leaves its forked workers running: kill them too.
        children = self.harness.worker_pids_of(self.pid)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for pid in children:
            try:
                os.kill(pid, 9)
            except (ProcessLookupError, PermissionError):
                pass


class Harness:
    """A database, a ledger and the consumer processes of one test (killed by ``close``)."""

    def __init__(self, directory: str, clock_spec: Optional[str] = None,
                 redis_url: Optional[str] = None) -> None:
        self.dir = str(directory)
        self.db = os.path.join(self.dir, 'app.db')
        self.ledger_path = os.path.join(self.dir, 'ledger.txt')
        self.env = dict(os.environ)
        self.env['PYTHONPATH'] = os.pathsep.join(
            [ROOT_DIR, TESTS_DIR] + [p for p in os.environ.get('PYTHONPATH', '').split(
                os.pathsep) if p])
        self.env[DB_ENV] = self.db
        if redis_url:
            self.env[REDIS_ENV] = redis_url
        else:
            self.env.pop(REDIS_ENV, None)
        self.env[LEDGER_ENV] = self.ledger_path
        if clock_spec:
            self.env[CLOCK_ENV] = clock_spec
        else:
            self.env.pop(CLOCK_ENV, None)
        self.clock = make_clock(clock_spec)
        self.queue = build(self.db, self.clock, redis_url)
        self.consumers: List[ConsumerProcess] = []

    def start(self, *options: str, name: Optional[str] = None,
              ready: bool = True) -> ConsumerProcess:
        consumer = ConsumerProcess(self, name or 'consumer-%d' % (len(self.consumers) + 1),
                                   options)
        self.consumers.append(consumer)
        if ready:
            consumer.wait_ready()
        return consumer

    @property
    def app(self):
        """The task wrappers (echo, block, die, sleepy, started_at, periodic)."""
        return self.queue.app

    def release_path(self, tag: str) -> str:
        return os.path.join(self.dir, 'release-%s' % tag)

    def release(self, tag: str) -> None:
        open(self.release_path(tag), 'w').close()

    def ledger(self, event: Optional[str] = None) -> List[Tuple[str, ...]]:
        lines = read_ledger(self.ledger_path)
        return [l for l in lines if event is None or l[0] == event]

    def worker_pids_of(self, parent: int) -> List[int]:
        pids = []
        for entry in os.listdir('/proc') if os.path.isdir('/proc') else ():
            if not entry.isdigit():
                continue
            try:
                with open('/proc/%s/stat' % entry) as fh:
                    fields = fh.read().rsplit(')', 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                pids.append(int(entry))
        return pids

    def close(self) -> None:
        for consumer in self.consumers:
            try:
                consumer.kill()
            except Exception:
                pass
        self.queue.close()
