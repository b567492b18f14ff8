#!/usr/bin/env python3
"""Instructions the redis-server executes per call or per task of RedisQueue's operations,
counted with valgrind's callgrind on a redis-server started for the run (the same count for
the same code and input, however busy the machine).

    python bench/redis_server_cost.py                       # this tree
    python bench/redis_server_cost.py --sqlq-src /tmp/old   # another checkout's sqlq/

Rows: a ``PING`` and huey's ``LPUSH`` (references); an ``FCALL`` of an empty function with no
arguments and with a single enqueue's 10; sqlq's single enqueue (``enq1``, keyed, one call
each); a batch enqueue (1000 keyed messages per call, per message); a drain of 1024 keyed
tasks by ``dequeue_many(128)`` + ``complete_many`` with results, without and with history (per
task); an in-process ``Worker`` draining 2000 ``noop(i)`` tasks of a ``RedisQueue`` (per task).
Counts are zeroed before and dumped after each workload (``callgrind_control``), so the
server's start-up and the library's loading are not counted.
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import Any, Callable, List, Optional


class CountedServer:
    """A redis-server under callgrind (127.0.0.1, a free port, no persistence)."""

    def __init__(self, workdir: str) -> None:
        import redis
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            self.port = s.getsockname()[1]
        self.out = os.path.join(workdir, 'callgrind.out')
        self.proc = subprocess.Popen(
            ['valgrind', '--tool=callgrind', '--callgrind-out-file=%s.%%p' % self.out,
             shutil.which('redis-server') or 'redis-server', '--port', str(self.port),
             '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', workdir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.client = redis.Redis(host='127.0.0.1', port=self.port)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.client.ping()
                break
            except redis.RedisError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit('redis-server under valgrind did not start') from None
                time.sleep(0.2)
        # valgrind's pid is the server's (valgrind execs the tool in place)
        self.pid = self.proc.pid

    def count(self, workload: Callable[[], None], per: int) -> float:
        """Instructions of ``workload`` on the server, divided by ``per``."""
        subprocess.run(['callgrind_control', '-z', str(self.pid)], check=True,
                       capture_output=True)
        workload()
        before = set(glob.glob(self.out + '.*'))
        subprocess.run(['callgrind_control', '-d', str(self.pid)], check=True,
                       capture_output=True)
        dumped = sorted(set(glob.glob(self.out + '.*')) - before, key=os.path.getmtime)[-1]
        total = 0
        with open(dumped) as f:
            for line in f:
                if line.startswith(('summary:', 'totals:')):
                    total = int(line.split()[1])
        os.unlink(dumped)
        return total / per

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sqlq-src', default=None, help='measure the sqlq package in DIR')
    args = parser.parse_args(argv)
    if args.sqlq_src:
        sys.path.insert(0, os.path.abspath(args.sqlq_src))
    if shutil.which('valgrind') is None or shutil.which('callgrind_control') is None:
        print('needs valgrind (callgrind_control)', file=sys.stderr)
        return 2
    import sqlq
    from sqlq import RedisQueue
    from sqlq.storage.redis import RedisStorage
    from sqlq.storage.redis._scripts import FUNCTION, LIBRARY
    from sqlq.storage.types import Finished
    from sqlq.worker import Worker

    workdir = tempfile.mkdtemp(prefix='sqlq-servercost-')
    server = CountedServer(workdir)
    r = server.client
    url = 'redis://127.0.0.1:%d/0' % server.port
    print('sqlq from %s; redis-server under callgrind on port %d'
          % (os.path.dirname(sqlq.__file__), server.port), file=sys.stderr)

    def one_by_one(commands: List[Any]) -> Callable[[], None]:
        def run() -> None:
            for command in commands:
                r.execute_command(*command)
        return run

    rows: List[tuple[str, float]] = []
    try:
        msg, now, n = b'x' * 110, repr(time.time()), 2000
        r.function_load(LIBRARY, replace=True)
        r.function_load("#!lua name=probe_empty\nredis.register_function{function_name="
                        "'probe_empty', callback=function(_, argv) return {1, {0}} end}",
                        replace=True)
        args = ['sqlq:q:{bench}:', 'sqlq:', now, 0, 'enq1', msg, 0, 0, '']
        r.flushdb()
        rows.append(('PING', server.count(one_by_one([('PING',)] * n), n)))
        rows.append(("LPUSH of huey's message", server.count(
            one_by_one([('LPUSH', 'huey.redis.bench', msg)] * n), n)))
        rows.append(('FCALL of an empty function, no arguments', server.count(
            one_by_one([('FCALL', 'probe_empty', 0)] * n), n)))
        rows.append(("FCALL of an empty function, a single enqueue's 10 arguments",
                     server.count(one_by_one([('FCALL', 'probe_empty', 0, *args, 'k%d' % i)
                                              for i in range(n)]), n)))
        r.flushdb()
        rows.append(('single enqueue (enq1, keyed), per call', server.count(
            one_by_one([('FCALL', FUNCTION, 0, *args, str(uuid.uuid4())) for _ in range(n)]),
            n)))
        batch: List[Any] = []
        for _ in range(1000):
            batch += [msg, 0, 0, str(uuid.uuid4())]
        r.flushdb()
        rows.append(('batch enqueue (enq, 1000 keyed per call), per message', server.count(
            one_by_one([('FCALL', FUNCTION, 0, 'sqlq:q:{bench}:', 'sqlq:', now, 0, 'enq',
                         1000, *batch)] * 4), 4000)))

        for history in (False, True):
            r.flushdb()
            s = RedisStorage('cost', url=url)
            s.enqueue_many([(msg, 0)] * 1024, ['k%d' % i for i in range(1024)])

            def drain(s: Any = s, history: bool = history) -> None:
                while True:
                    claims = s.dequeue_many(128)
                    if not claims:
                        break
                    s.complete_many(
                        [(c.receipt, 'r%d' % c.seq, b'result', None) for c in claims],
                        [Finished('k%d' % c.seq, 'noop', 'success', time.time(), 0.0001)
                         for c in claims] if history else None)
            rows.append(('dequeue_many(128) + complete_many, %s history, per task'
                         % ('with' if history else 'no'), server.count(drain, 1024)))
            s.close()

        r.flushdb()
        queue = RedisQueue('bench', url=url)

        @queue.task(name='bench.noop')
        def noop(i: int) -> int:
            return i

        noop.map(range(2000))

        def work() -> None:
            worker = Worker(queue, threading.Event(), name='bench')
            with queue.outcome_writer.grouping(worker.outcomes), \
                    queue.storage.worker_session():
                while worker.run_once():
                    pass
                worker.outcomes.flush()
        rows.append(('Worker drain of 2000 noop(i), per task', server.count(work, 2000)))
        queue.close()
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print('| redis-server instructions | count |')
    print('|---|---:|')
    for label, value in rows:
        print('| %s | %.1fk |' % (label, value / 1000))
    return 0


if __name__ == '__main__':
    sys.exit(main())
