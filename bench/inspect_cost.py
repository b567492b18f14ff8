"""What the inspection commands cost on a big queue: ``sqlq pending``, ``sqlq revoke ID`` and
``sqlq status ID`` at N pending tasks (default 50,000), timed as a person runs them (a whole
``python -m sqlq ...`` process, output to a pipe), plus the interpreter's start-up alone.

    python bench/inspect_cost.py                       # this tree, N=50000, 5 runs each
    python bench/inspect_cost.py --sqlq-src /tmp/old   # another tree (e.g. a git archive)
    python bench/inspect_cost.py -n 2000 --runs 1      # CI: quick

Each command is timed twice: as a whole process, and in-process (``sqlq.cli.main`` alone,
after the imports: the command's own cost, which the machine's load disturbs less).
The database is built once per run of this script (``enqueue_many`` of N no-op tasks, plus
one scheduled task); the task revoked and looked up is in the middle of the queue. A command
that the measured tree does not have (``status`` before it existed) is reported as ``-``.
Times are medians of ``--runs`` runs, in seconds; nothing is asserted.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Dict, List, Optional

APP = textwrap.dedent('''
    import os
    from sqlq import SqliteQueue
    queue = SqliteQueue(os.environ['INSPECT_DB'], name='inspect')

    @queue.task(name='inspect.noop')
    def noop(i):
        return None
''')


#: Runs one command in-process, timing ``sqlq.cli.main`` alone (the imports, of sqlq and of
#: the app, are done before): what the command itself costs, without the interpreter's start.
IN_PROCESS = textwrap.dedent('''
    import contextlib, io, sys, time
    import sqlq.cli, inspect_app
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        start = time.perf_counter()
        code = sqlq.cli.main(sys.argv[1:])
        took = time.perf_counter() - start
    print(took if code == 0 else -1)
''')


def run(argv: List[str], env: Dict[str, str], cwd: str) -> Optional[float]:
    """Seconds one command took (None if it failed: e.g. an unknown command)."""
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=300)
    took = time.perf_counter() - start
    return took if proc.returncode == 0 else None


def run_in_process(argv: List[str], env: Dict[str, str], cwd: str) -> Optional[float]:
    """Seconds ``sqlq.cli.main(argv)`` took in a fresh process (None if it failed)."""
    proc = subprocess.run([sys.executable, '-c', IN_PROCESS] + argv, env=env, cwd=cwd,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    try:
        took = float(proc.stdout.decode().split()[-1])
    except (IndexError, ValueError):
        return None
    return took if proc.returncode == 0 and took >= 0 else None


def median(values: List[Optional[float]]) -> Optional[float]:
    ok = [v for v in values if v is not None]
    return statistics.median(ok) if len(ok) == len(values) and ok else None


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('-n', '--tasks', type=int, default=50_000)
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--sqlq-src', default=None,
                        help='measure the sqlq package in this directory')
    args = parser.parse_args(argv)
    src = os.path.abspath(args.sqlq_src or os.path.join(os.path.dirname(__file__), '..'))
    with tempfile.TemporaryDirectory(prefix='sqlq-inspect-') as workdir:
        with open(os.path.join(workdir, 'inspect_app.py'), 'w') as f:
            f.write(APP)
        env = dict(os.environ, INSPECT_DB=os.path.join(workdir, 'inspect.db'),
                   PYTHONPATH=os.pathsep.join([src, workdir]))
        build = textwrap.dedent('''
            import sys, time
            from inspect_app import queue, noop
            n = int(sys.argv[1])
            results = queue.enqueue_many([noop.s(i) for i in range(n)])
            noop.schedule((0,), delay=3600)
            print(results.results[n // 2].id)  # [i] would wait for the value
        ''')
        proc = subprocess.run([sys.executable, '-c', build, str(args.tasks)], env=env,
                              cwd=workdir, stdout=subprocess.PIPE, check=True, timeout=180)
        middle = proc.stdout.decode().split()[-1]
        py = [sys.executable]
        commands = {
            'python start-up (import sqlq)': py + ['-c', 'import sqlq.cli'],
            'sqlq pending (default)': py + ['-m', 'sqlq', 'pending', 'inspect_app.queue'],
            'sqlq pending --limit 50': py + ['-m', 'sqlq', 'pending', 'inspect_app.queue',
                                             '--limit', '50'],
            'sqlq revoke ID': py + ['-m', 'sqlq', 'revoke', 'inspect_app.queue', middle],
            'sqlq status ID': py + ['-m', 'sqlq', 'status', 'inspect_app.queue', middle],
            'sqlq stats': py + ['-m', 'sqlq', 'stats', 'inspect_app.queue'],
        }
        times: Dict[str, List[Optional[float]]] = {name: [] for name in commands}
        inside: Dict[str, List[Optional[float]]] = {name: [] for name in commands}
        for _ in range(args.runs):  # interleaved: drift hits every command alike
            for name, command in commands.items():
                times[name].append(run(command, env, workdir))
                if command[1] == '-m':
                    inside[name].append(run_in_process(command[3:], env, workdir))
    print('inspection cost at %d pending tasks (%s), median of %d runs'
          % (args.tasks, src, args.runs))
    print('| command | whole process (s) | the command alone (s) |\n|---|---:|---:|')
    for name in commands:
        whole, alone = median(times[name]), median(inside[name]) if inside[name] else None
        print('| %s | %s | %s |' % (name, '-' if whole is None else '%.3f' % whole,
                                    '-' if alone is None else '%.4f' % alone))
    return 0


if __name__ == '__main__':
    sys.exit(main())
