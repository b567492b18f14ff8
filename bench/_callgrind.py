"""Instructions per task of sqlq's hot paths, counted with valgrind's callgrind (the same count
for the same code and input, whatever else the machine is doing): the script that enqueues and
drains no-op tasks in one process, and the counting of one of its runs. Used by
``history_cost.py --instructions`` and ``tracing_cost.py``, which differ only in the queue
options they compare."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Dict, Optional

#: What a counted run does once ``options`` (the queue's keyword arguments) are set: ``start``
#: (nothing), ``bulk`` (``enqueue_many`` of N no-op tasks), ``drain`` (bulk, then one in-process
#: Worker drains them with its batch and group sizes pinned to their full-speed values) or
#: ``single`` (N single enqueues). argv: N, the step, the column's mode.
_STEPS_SCRIPT = '''
queue = SqliteQueue(os.path.join(tempfile.mkdtemp(), 'b.db'), name='bench', **options)

@queue.task(name='bench.noop')
def noop(i):
    return None

if step == 'single':
    for i in range(n):
        noop(i)
elif step != 'start':
    queue.enqueue_many([noop.s(i) for i in range(n)])
gc.collect()
gc.freeze()  # what exists now is never scanned again: no count depends on when the
# cycle collector happens to run over a big heap
if step == 'drain':
    import sqlq.revocation  # revoke flags read with a batch stay fresh, as at full speed
    sqlq.revocation.REVOKE_PREFETCH_TTL = 1e9
    worker = Worker(queue, threading.Event(), name='bench')
    worker.outcomes.max_delay = 1e9  # flushed by size or with the next claim
    with queue.outcome_writer.grouping(worker.outcomes), queue.storage.worker_session():
        while True:
            worker._mean_run = 1e-9  # batches of max_batch (64), as at full speed
            if not worker.run_once():
                break
        worker.outcomes.flush()
queue.close()
'''

#: The steps, in the order their counts are subtracted (drain = drain - bulk, ...).
STEPS = ('start', 'bulk', 'drain', 'single')


def counted_script(setup: str) -> str:
    """The script of a counted run: ``setup`` (which sets ``options`` from ``mode``) and then
    the steps."""
    head = ('import gc, os, sys, tempfile, threading\n'
            'from sqlq import SqliteQueue\n'
            'from sqlq.worker import Worker\n'
            'n, step, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]\n')
    return head + textwrap.dedent(setup) + _STEPS_SCRIPT


def count_instructions(script: str, src: str, mode: str, n: int, step: str, cache: str,
                       env: Optional[Dict[str, str]] = None) -> int:
    """Instructions one run of ``script`` executes with the sqlq package in ``src``. A run
    without valgrind first compiles every module it imports into ``cache``, so that no count
    includes the compiling of a module imported lazily."""
    # A fixed hash seed and no address-space randomization: dict and set layouts, and so
    # the counts, are the same from run to run.
    environ = dict(os.environ, PYTHONPATH=src, PYTHONPYCACHEPREFIX=cache, PYTHONHASHSEED='0',
                   **(env or {}))
    environ.pop('PYTHONDONTWRITEBYTECODE', None)
    command = [sys.executable, '-c', script, str(n), step, mode]
    # cwd: not this tree, whose sqlq would shadow PYTHONPATH's (python -c puts cwd first)
    subprocess.run(command, env=environ, cwd=cache, stdout=subprocess.DEVNULL, check=True,
                   timeout=600)
    proc = subprocess.run(['setarch', '-R', 'valgrind', '--tool=callgrind',
                           '--callgrind-out-file=/dev/null'] + command, env=environ, cwd=cache,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True,
                          timeout=1800)
    for line in proc.stderr.decode().splitlines():
        if 'Collected :' in line:
            return int(line.split(':')[-1])
    raise RuntimeError('callgrind printed no count: %s' % proc.stderr.decode()[-500:])
