#!/usr/bin/env python3
"""Where one RedisQueue enqueue spends its time, next to huey's RedisHuey, in one process on
one redis-server (started for the run: latency.py's ``BenchRedis``).

    python bench/redis_enqueue_cost.py                 # N=5000 calls, 5 interleaved rounds
    python bench/redis_enqueue_cost.py -n 20000 --rounds 3 --json /tmp/cost.json

Rows (each a loop of N calls, the rows interleaved round by round):

- ``ping``: a raw ``PING`` on a socket of our own (sendall + recv): the round trip alone.
- ``lpush``: redis-py ``LPUSH`` of huey's message for ``noop(i)`` (what RedisHuey's enqueue sends).
- ``huey noop(i)``: RedisHuey's whole enqueue of a task call.
- ``sqlq enqueue``: ``RedisStorage.enqueue`` of sqlq's message for ``noop(i)``.
- ``sqlq noop(i)``: RedisQueue's whole enqueue of a task call.

Columns: wall µs per call, this process's CPU µs per call (``time.process_time``), the
redis-server's CPU µs per call (utime+stime from /proc over the loop), and the server's own
``usec_per_call`` of the command the row sends (``INFO commandstats`` after ``CONFIG
RESETSTAT``; for sqlq ``FCALL``). Medians over the rounds, with min–max.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
import latency as L  # noqa: E402


def server_cpu(pid: int) -> float:
    """utime+stime of process ``pid`` in seconds (/proc)."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def command_usec(client: Any) -> Dict[str, Tuple[int, float]]:
    """command -> (calls, usec_per_call) from INFO commandstats."""
    stats = client.info('commandstats')
    return {name[len('cmdstat_'):]: (int(v['calls']), float(v['usec_per_call']))
            for name, v in stats.items()}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('-n', type=int, default=5000, help='calls per row and round')
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--json', default=None)
    parser.add_argument('--sqlq-src', default=None, help='measure the sqlq package in DIR')
    parser.add_argument('--rows', default=None,
                        help='comma-separated subset of: ping,lpush,huey,sqlq-enqueue,sqlq')
    args = parser.parse_args(argv)
    if args.sqlq_src:
        sys.path.insert(0, os.path.abspath(args.sqlq_src))
    import redis
    from huey import RedisHuey

    import sqlq
    from sqlq import RedisQueue

    workdir = tempfile.mkdtemp(prefix='sqlq-enqcost-')
    server = L.BenchRedis(workdir)
    pid = server.proc.pid
    url = server.fresh_url()
    try:
        queue = RedisQueue('bench', url=url)
        huey = RedisHuey('bench', url=url)

        @queue.task(name='bench.noop')
        def snoop(i: int) -> int:
            return i

        @huey.task(name='bench.noop')
        def hnoop(i: int) -> int:
            return i

        hmsg = huey.serialize_task(hnoop.s(1))
        hkey = huey.storage.queue_key
        rclient = redis.Redis(host='127.0.0.1', port=server.port)
        sock = socket.create_connection(('127.0.0.1', server.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sstorage = queue.storage
        smsg = queue._serializer.dumps(queue._message(snoop.s(1))) \
            if hasattr(queue, '_message') else None
        if smsg is None:  # the bytes a noop(1) call stores: read one back
            snoop(1)
            smsg = sstorage.enqueued_items(1)[0]
            sstorage.flush_queue()

        def ping(i: int) -> None:
            sock.sendall(b'*1\r\n$4\r\nPING\r\n')
            if sock.recv(64) != b'+PONG\r\n':
                raise RuntimeError('bad PING reply')

        rows: Dict[str, Tuple[Callable[[int], Any], str]] = {
            'ping': (ping, 'ping'),
            'lpush': (lambda i: rclient.lpush(hkey, hmsg), 'lpush'),
            'huey': (hnoop, 'lpush'),
            'sqlq-enqueue': (lambda i: sstorage.enqueue(smsg), 'fcall'),
            'sqlq': (snoop, 'fcall'),
        }
        chosen = args.rows.split(',') if args.rows else list(rows)
        results: Dict[str, List[Dict[str, float]]] = {name: [] for name in chosen}
        for name in chosen:  # warm-up: connections, the function library
            for i in range(200):
                rows[name][0](i)
        print('sqlq %s from %s; redis-server %s; payloads: sqlq %d B, huey %d B'
              % (sqlq.__version__, os.path.dirname(sqlq.__file__), server.version,
                 len(smsg), len(hmsg)), file=sys.stderr)
        for r in range(args.rounds):
            for name in chosen:
                fn, command = rows[name]
                server.client.flushall()
                server.client.config_resetstat()
                s0 = server_cpu(pid)
                c0 = time.process_time()
                t0 = time.perf_counter()
                for i in range(args.n):
                    fn(i)
                wall = time.perf_counter() - t0
                cpu = time.process_time() - c0
                s1 = server_cpu(pid)
                calls, usec = command_usec(server.client).get(command, (0, float('nan')))
                results[name].append({'wall_us': wall / args.n * 1e6,
                                      'cpu_us': cpu / args.n * 1e6,
                                      'server_cpu_us': (s1 - s0) / args.n * 1e6,
                                      'usec_per_call': usec, 'calls': calls})
            print('round %d done' % (r + 1), file=sys.stderr)
        sock.close()
        queue.close()
    finally:
        server.stop()

    def cell(name: str, key: str) -> str:
        values = [run[key] for run in results[name]]
        return '%.1f (%.1f–%.1f)' % (statistics.median(values), min(values), max(values))

    print('| row | wall µs/call | client CPU µs/call | redis-server CPU µs/call | '
          'usec_per_call (INFO commandstats) |')
    print('|---|---:|---:|---:|---:|')
    for name in chosen:
        print('| %s | %s | %s | %s | %s |' % (name, cell(name, 'wall_us'), cell(name, 'cpu_us'),
                                             cell(name, 'server_cpu_us'),
                                             cell(name, 'usec_per_call')))
    if 'sqlq' in results and 'huey' in results:
        ratios = [h['wall_us'] / s['wall_us'] for h, s in zip(results['huey'], results['sqlq'])]
        print('\nsqlq noop(i) rate ÷ huey noop(i) rate per round: %s'
              % ', '.join('%.2f×' % x for x in ratios))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'n': args.n, 'rounds': args.rounds, 'results': results}, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
