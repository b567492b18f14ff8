"""Two copies of SQLite in one process on one file (issue 14, item 4).

apsw ships its own SQLite. When the application opens the same file through the standard
``sqlite3`` module (Django, SQLAlchemy) in the same process, the two libraries do not see each
other's POSIX locks: writes overlap and one copy's commit overwrites the other's, and when the
``sqlite3`` connection closes it removes the WAL and -shm files under sqlq's connections. Both
lost every enqueue without an error. sqlq must refuse, loudly, before it writes.

What "lost" means is checked from another *process* (a fresh apsw connection), which is what a
consumer sees.
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from typing import Iterator

import pytest

from sqlq.exceptions import DatabaseSharedError
from sqlq.storage.sqlite import SqliteStorage, _guard

pytestmark = pytest.mark.skipif(not _guard.SUPPORTED, reason='needs /proc/self/fd (Linux)')


def rows_seen_by_another_process(path: str) -> int:
    code = ('import apsw, sys; c = apsw.Connection(sys.argv[1]); '
            'print(c.execute("SELECT count(*) FROM task").fetchall()[0][0])')
    out = subprocess.run([sys.executable, '-c', code, path], capture_output=True, text=True,
                         check=True, timeout=60)
    return int(out.stdout)


@pytest.fixture(params=['inotify', 'fd-count'])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The guard with inotify and without it (its fallback: the number of open descriptors
    of this process)."""
    if request.param == 'fd-count':
        monkeypatch.setattr(_guard, 'FORCE_FALLBACK', True)
    elif not _guard.inotify_available():
        pytest.skip('inotify is not available here')
    yield request.param


def test_enqueue_inside_an_sqlite3_transaction_is_refused(db_path: str, mode: str) -> None:
    """The issue's reproduction: the application holds a write transaction of its own through
    ``sqlite3`` and enqueues inside it. Before: every enqueue returned at once and all were
    lost (0 of 1000 task rows, integrity_check 'ok')."""
    storage = SqliteStorage(db_path, 'test')
    app = sqlite3.connect(db_path, isolation_level=None)
    try:
        app.execute('CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY)')
        app.execute('BEGIN IMMEDIATE')
        app.execute('INSERT INTO orders DEFAULT VALUES')
        accepted = 0
        with pytest.raises(DatabaseSharedError, match='another copy of the SQLite library'):
            for _ in range(100):
                storage.enqueue(b'task')
                accepted += 1
        app.execute('COMMIT')
        # Whatever was accepted before the refusal is really there.
        assert accepted == 0
        assert rows_seen_by_another_process(db_path) == 0
    finally:
        app.close()
        storage.close()


def test_sqlite3_connection_closing_under_sqlq_is_refused(db_path: str, mode: str) -> None:
    """Django's default (``CONN_MAX_AGE = 0``): a connection per request, closed after it. The
    close checkpoints and deletes the WAL and -shm files that sqlq's connection still uses;
    before, the following enqueues went to the deleted WAL (another process saw 10 of 20)."""
    storage = SqliteStorage(db_path, 'test')
    try:
        for _ in range(10):
            storage.enqueue(b'before')
        app = sqlite3.connect(db_path)
        app.execute('SELECT count(*) FROM task').fetchall()
        app.close()
        accepted = 0
        with pytest.raises(DatabaseSharedError, match='deleted'):
            for _ in range(10):
                storage.enqueue(b'after')
                accepted += 1
        assert accepted == 0
        assert rows_seen_by_another_process(db_path) == 10
        # It stays refused: the connections of this process lost their WAL for good.
        with pytest.raises(DatabaseSharedError):
            storage.enqueue(b'again')
    finally:
        storage.close()
    # A new storage (new connections) works again.
    again = SqliteStorage(db_path, 'test')
    try:
        again.enqueue(b'fresh')
        assert rows_seen_by_another_process(db_path) == 11
    finally:
        again.close()


def test_storage_opened_while_sqlite3_has_the_file_is_refused(db_path: str) -> None:
    """The application's ``sqlite3`` connection came first: construction fails."""
    SqliteStorage(db_path, 'test').close()
    app = sqlite3.connect(db_path)
    try:
        app.execute('SELECT count(*) FROM task').fetchall()
        with pytest.raises(DatabaseSharedError, match='file of its own'):
            SqliteStorage(db_path, 'test')
    finally:
        app.close()


def test_claims_are_refused_too(db_path: str) -> None:
    """A worker's claim (an autocommit write) is checked like an enqueue."""
    storage = SqliteStorage(db_path, 'test')
    try:
        storage.enqueue(b'task')
        app = sqlite3.connect(db_path, isolation_level=None)
        app.execute('BEGIN IMMEDIATE')
        try:
            with pytest.raises(DatabaseSharedError):
                storage.dequeue()
        finally:
            app.execute('ROLLBACK')
            app.close()
    finally:
        storage.close()


def test_separate_files_lose_nothing(tmp_path: str, mode: str) -> None:
    """The safe way: the application's database and the queue in two files. The same overlap
    as above loses nothing."""
    app_path, queue_path = os.path.join(tmp_path, 'app.db'), os.path.join(tmp_path, 'q.db')
    storage = SqliteStorage(queue_path, 'test')
    app = sqlite3.connect(app_path, isolation_level=None)
    try:
        app.execute('PRAGMA journal_mode=WAL')
        app.execute('CREATE TABLE orders (id INTEGER PRIMARY KEY)')
        for _ in range(5):
            app.execute('BEGIN IMMEDIATE')
            for _ in range(20):
                app.execute('INSERT INTO orders DEFAULT VALUES')
                storage.enqueue(b'task')
            app.execute('COMMIT')
        app.close()
        storage.enqueue(b'after close')
        assert rows_seen_by_another_process(queue_path) == 101
    finally:
        storage.close()


def test_same_copy_and_other_processes_are_not_refused(db_path: str, mode: str) -> None:
    """No false alarm: several storages and threads of this process (one SQLite copy), another
    process opening and closing the file, a forked child."""
    import threading
    first = SqliteStorage(db_path, 'a')
    second = SqliteStorage(db_path, 'b')
    try:
        first.enqueue(b'1')
        second.enqueue(b'2')
        thread = threading.Thread(target=first.enqueue, args=(b'3',))
        thread.start()
        thread.join(30)
        assert rows_seen_by_another_process(db_path) == 3  # another process opened and closed
        first.enqueue(b'4')
        assert first.dequeue() is not None
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                first.enqueue(b'5')
                os._exit(0)
            except BaseException:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        second.enqueue(b'6')
        assert rows_seen_by_another_process(db_path) == 6  # a claimed row is still a row
    finally:
        first.close()
        second.close()


def test_forked_child_thread_writes_while_another_restarts_the_guard(db_path: str) -> None:
    """In a forked worker, a thread's first write (the heartbeat's) can meet the guard while
    another thread's new connection is replacing the inherited inotify instance: the write
    must go through, not fail on the parent's closed descriptor."""
    if not _guard.inotify_available():
        pytest.skip('inotify is not available here')
    storage = SqliteStorage(db_path, 'a')
    try:
        storage.enqueue(b'1')
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                # Another thread's first connection in this process is replacing the
                # inherited inotify instance: it has closed the parent's descriptor and not
                # yet opened its own (what _get_notifier does, in another thread).
                inherited = _guard._notifier
                assert inherited is not None and inherited.pid != os.getpid()
                os.close(inherited.fd)
                storage._guard.check()  # this thread's write
                storage.enqueue(b'2')
                os._exit(0)
            except BaseException:
                import traceback
                traceback.print_exc()
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert rows_seen_by_another_process(db_path) == 2
    finally:
        storage.close()
