"""Tasks for tests/reliability/test_multiprocess.py, importable by child processes.

Each process builds its own SqliteQueue on the shared file with :func:`build`; the task is
registered under a fixed name so producers and workers agree on it.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, List, Tuple

if TYPE_CHECKING:  # pragma: no cover
    from sqlq.api import Queue

LEDGER_DIR_ENV = 'SQLQ_MP_LEDGER_DIR'


def build(path: str) -> Tuple['Queue', Any]:
    from sqlq import SqliteQueue

    queue = SqliteQueue(path, name='mp')

    @queue.task(name='mp.record')
    def record(producer: str, seq: int) -> Tuple[str, int]:
        ledger = os.path.join(os.environ[LEDGER_DIR_ENV], 'worker-%d.log' % os.getpid())
        with open(ledger, 'a') as fh:
            fh.write('%s:%s\n' % (producer, seq))
        return (producer, seq)

    return queue, record


def produce(path: str, fastpath: str, producer: str, count: int, start_evt: Any,
            out_ids: Any) -> None:
    from sqlq import _accel
    _accel.use(fastpath)
    queue, record = build(path)
    start_evt.wait(30)
    ids: List[str] = []
    try:
        third = count // 3
        for seq in range(third):                         # plain calls
            ids.append(record(producer, seq).id)
        rg = record.map([(producer, seq) for seq in range(third, 2 * third)])
        ids.extend(r.id for r in rg)
        rg = queue.enqueue_many([record.s(producer, seq) for seq in range(2 * third, count)])
        ids.extend(r.id for r in rg)
    finally:
        out_ids.put((producer, ids))
        queue.close()


def work(path: str, fastpath: str, ledger_dir: str, start_evt: Any, producers_done: Any,
         idle_exit: Any) -> None:
    os.environ[LEDGER_DIR_ENV] = ledger_dir
    from sqlq import _accel
    _accel.use(fastpath)
    queue, _ = build(path)
    start_evt.wait(30)
    try:
        while True:
            task = queue.dequeue()
            if task is not None:
                queue.execute(task)
                continue
            if producers_done.is_set() and queue.pending_count() == 0:
                return
            idle_exit.wait(0.005)                        # bounded idle poll
    finally:
        queue.close()
