"""What raw apsw does on this file system: the physical limits sqlq's figures are held against.

Each measurement runs on a fresh file in the given directory, in WAL mode with
``synchronous=NORMAL`` (sqlq's defaults), on a table shaped like sqlq's ``task`` table with its
ready index, rows carrying a message of ``size`` bytes (default: the size of sqlq's encoded
``bench.noop(i)`` message). No Python above the statements but a loop: what is left of sqlq's
cost once its own code is taken away.

- :func:`single_commits`: one ``INSERT`` per autocommit transaction (what a single enqueue
  must at least do).
- :func:`batched_inserts`: ``INSERT`` of ``batch`` rows (1000) per transaction, with
  ``executemany`` (what ``map`` must at least do).
- :func:`claim_delete_loop`: the bare claim+ack loop, one commit per task: an autocommit
  ``DELETE ... RETURNING`` of the head of the ready index (a claim and its ack at once, as
  huey's dequeue; no result stored). The drain target's reference (``/work``'s anchors:
  "claim-and-delete commits/s").
- :func:`claim_ack_loop`: the batched drain's SQL without its Python: each transaction acks the
  previous batch (``DELETE`` by id and ``INSERT`` of a small result row into a key/value table,
  as the worker's group commit does) and claims the next ``batch`` (64) rows (``SELECT`` of the
  head of the ready index, then ``UPDATE ... SET owner``), in one ``BEGIN IMMEDIATE``.

Every function returns ``{'rate': operations per second, 'seconds': ..., 'n': ...}`` after
``warmup`` untimed operations.
"""
from __future__ import annotations

import os
import time
from typing import Any, Dict

#: Bytes of sqlq's encoded ``bench.noop(i)`` message (compare.py's task).
NOOP_MESSAGE_SIZE = 110

SCHEMA = """
CREATE TABLE task (id INTEGER PRIMARY KEY, queue TEXT NOT NULL, priority INTEGER NOT NULL,
                   data BLOB NOT NULL, enqueued_at REAL NOT NULL, owner TEXT,
                   claimed_at REAL, attempts INTEGER NOT NULL DEFAULT 0);
CREATE INDEX task_ready ON task (queue, priority DESC, id) WHERE owner IS NULL;
CREATE TABLE kv (queue TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
                 PRIMARY KEY (queue, key)) WITHOUT ROWID;
"""
INSERT = 'INSERT INTO task (queue, priority, data, enqueued_at) VALUES (?, ?, ?, ?)'
HEAD = ('SELECT id, data FROM task WHERE queue = ? AND owner IS NULL '
        'ORDER BY priority DESC, id LIMIT ?')
CLAIM = 'UPDATE task SET owner = ?, claimed_at = ?, attempts = attempts + 1 WHERE id = ?'
ACK = 'DELETE FROM task WHERE id = ?'
RESULT = 'INSERT OR REPLACE INTO kv (queue, key, value) VALUES (?, ?, ?)'


def _open(directory: str, name: str) -> Any:
    import apsw
    path = os.path.join(directory, name)
    for suffix in ('', '-wal', '-shm'):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)
    conn = apsw.Connection(path)
    conn.execute('PRAGMA journal_mode=WAL').fetchall()
    conn.execute('PRAGMA synchronous=NORMAL')
    conn.execute(SCHEMA)
    return conn


def _close(conn: Any, directory: str, name: str) -> None:
    conn.close()
    path = os.path.join(directory, name)
    for suffix in ('', '-wal', '-shm'):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)


def single_commits(directory: str, n: int, size: int = NOOP_MESSAGE_SIZE,
                   warmup: int = 200) -> Dict[str, Any]:
    """Rows per second, one ``INSERT`` per autocommit transaction."""
    conn = _open(directory, 'limit-single.db')
    try:
        data = b'x' * size
        execute = conn.execute
        for _ in range(warmup):
            execute(INSERT, ('bench', 0, data, time.time()))
        t0 = time.perf_counter()
        for _ in range(n):
            execute(INSERT, ('bench', 0, data, time.time()))
        seconds = time.perf_counter() - t0
    finally:
        _close(conn, directory, 'limit-single.db')
    return {'rate': n / seconds, 'seconds': seconds, 'n': n}


def batched_inserts(directory: str, n: int, size: int = NOOP_MESSAGE_SIZE,
                    batch: int = 1000, warmup: int = 1000) -> Dict[str, Any]:
    """Rows per second, ``batch`` rows per transaction (``executemany``)."""
    conn = _open(directory, 'limit-batch.db')
    try:
        data = b'x' * size

        def insert(count: int) -> None:
            for start in range(0, count, batch):
                now = time.time()
                rows = [('bench', 0, data, now)] * min(batch, count - start)
                conn.execute('BEGIN IMMEDIATE')
                conn.executemany(INSERT, rows)
                conn.execute('COMMIT')

        insert(warmup)
        t0 = time.perf_counter()
        insert(n)
        seconds = time.perf_counter() - t0
    finally:
        _close(conn, directory, 'limit-batch.db')
    return {'rate': n / seconds, 'seconds': seconds, 'n': n, 'batch': batch}


CLAIM_DELETE = ('DELETE FROM task WHERE id = (SELECT id FROM task WHERE queue = ? '
                'AND owner IS NULL ORDER BY priority DESC, id LIMIT 1) RETURNING data')


def claim_delete_loop(directory: str, n: int, size: int = NOOP_MESSAGE_SIZE,
                      warmup: int = 200) -> Dict[str, Any]:
    """Tasks per second, each claimed and deleted by one autocommit statement."""
    conn = _open(directory, 'limit-claim.db')
    try:
        data = b'x' * size
        conn.execute('BEGIN IMMEDIATE')
        conn.executemany(INSERT, [('bench', 0, data, time.time())] * (n + warmup))
        conn.execute('COMMIT')
        execute = conn.execute
        for _ in range(warmup):
            execute(CLAIM_DELETE, ('bench',)).fetchall()
        t0 = time.perf_counter()
        for _ in range(n):
            execute(CLAIM_DELETE, ('bench',)).fetchall()
        seconds = time.perf_counter() - t0
    finally:
        _close(conn, directory, 'limit-claim.db')
    return {'rate': n / seconds, 'seconds': seconds, 'n': n}


def claim_ack_loop(directory: str, n: int, size: int = NOOP_MESSAGE_SIZE, batch: int = 64,
                   warmup: int = 640) -> Dict[str, Any]:
    """Tasks per second through claim (``batch`` at a time) and ack with a stored result, the
    acks of one batch committed with the claim of the next (one process, one connection)."""
    conn = _open(directory, 'limit-drain.db')
    try:
        data = b'x' * size
        total = n + warmup
        conn.execute('BEGIN IMMEDIATE')
        conn.executemany(INSERT, [('bench', 0, data, time.time())] * total)
        conn.execute('COMMIT')
        execute, executemany = conn.execute, conn.executemany
        done = 0
        held: list = []
        t0 = 0.0
        while True:
            if done >= warmup and not t0:
                t0 = time.perf_counter()
            execute('BEGIN IMMEDIATE')
            if held:
                executemany(ACK, [(row[0],) for row in held])
                executemany(RESULT, [('bench', 'r%d' % row[0], b'\x80\x04K\x01.')
                                     for row in held])
                done += len(held)
            held = execute(HEAD, ('bench', batch)).fetchall()
            if held:
                now = time.time()
                executemany(CLAIM, [('owner', now, row[0]) for row in held])
            execute('COMMIT')
            if not held:
                break
        seconds = time.perf_counter() - t0
        counted = done - warmup
    finally:
        _close(conn, directory, 'limit-drain.db')
    return {'rate': counted / seconds, 'seconds': seconds, 'n': counted, 'batch': batch}
