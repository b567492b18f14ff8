"""Enqueues lost when the application uses Python's sqlite3 module on the queue's file in the
same process (issue 14, item 4): a second copy of SQLite whose locks apsw's copy cannot see.

    python bench/two_copies.py

Three patterns, each on a fresh file; "seen" is counted by another process while the producer
still runs (what a consumer would find), "lost" = accepted - seen:

- ``in-transaction``: the issue's reproduction, 5 x (BEGIN IMMEDIATE; 200 inserts of the
  application; 200 enqueues; COMMIT);
- ``per-request``: Django's default connection handling, 20 x (connect; read; close) each
  followed by one enqueue (no overlap at all);
- ``own-file``: the in-transaction pattern with the queue in a file of its own.

Before the guard: in-transaction accepted 1000, seen 0; per-request accepted 20, seen 0 (they
sat in a deleted WAL file: a kill -9 of the producer lost them, a clean close checkpointed
that file over the database the other processes had gone on writing).
With it: the first enqueue of each shared-file pattern raises DatabaseSharedError (refused),
nothing accepted is lost; own-file accepts and keeps all 1000.
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile

import sqlq.exceptions
from sqlq.storage.sqlite import SqliteStorage

Refused = getattr(sqlq.exceptions, 'DatabaseSharedError', sqlq.exceptions.StorageError)


def seen(path: str) -> int:
    code = ('import apsw, sys; print(apsw.Connection(sys.argv[1])'
            '.execute("SELECT count(*) FROM task").fetchall()[0][0])')
    return int(subprocess.run([sys.executable, '-c', code, path], capture_output=True,
                              text=True, check=True).stdout)


def in_transaction(storage: SqliteStorage, app_path: str) -> tuple[int, int]:
    app = sqlite3.connect(app_path, isolation_level=None)
    app.execute('PRAGMA journal_mode=WAL')
    app.execute('CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, pad BLOB)')
    accepted = refused = 0
    for _ in range(5):
        app.execute('BEGIN IMMEDIATE')
        for _ in range(200):
            app.execute('INSERT INTO orders (pad) VALUES (randomblob(500))')
        for _ in range(200):
            try:
                storage.enqueue(b'task')
                accepted += 1
            except Refused:
                refused += 1
        app.execute('COMMIT')
    app.close()
    return accepted, refused


def per_request(storage: SqliteStorage, app_path: str) -> tuple[int, int]:
    accepted = refused = 0
    for _ in range(20):
        app = sqlite3.connect(app_path)
        app.execute('SELECT count(*) FROM sqlite_schema').fetchall()
        app.close()
        try:
            storage.enqueue(b'task')
            accepted += 1
        except Refused:
            refused += 1
    return accepted, refused


def main() -> None:
    print('%-15s %8s %8s %6s %6s' % ('pattern', 'accepted', 'refused', 'seen', 'lost'))
    for name, run, own in (('in-transaction', in_transaction, False),
                           ('per-request', per_request, False),
                           ('own-file', in_transaction, True)):
        with tempfile.TemporaryDirectory() as tmp:
            queue_path = os.path.join(tmp, 'queue.db')
            app_path = os.path.join(tmp, 'app.db') if own else queue_path
            storage = SqliteStorage(queue_path)
            accepted, refused = run(storage, app_path)
            count = seen(queue_path)  # while the producer still runs, as a consumer would
            storage.close()
            print('%-15s %8d %8d %6d %6d' % (name, accepted, refused, count, accepted - count))


if __name__ == '__main__':
    main()
