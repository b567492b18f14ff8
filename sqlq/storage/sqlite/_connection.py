"""Per-thread apsw connections to one sqlq database file.

One connection per thread (``threading.local``), created on first use, plus a pid guard:
after ``fork`` the child opens fresh connections and never touches (nor closes, nor lets the
garbage collector finalise) the ones it inherited -- they are parked in :data:`_ABANDONED`.
Every connection runs in WAL mode with the configured ``synchronous`` and a busy handler that
waits up to the configured timeout; the first one of a storage checks the file's identity and
migrates its schema (:mod:`sqlq.storage.sqlite._schema`). apsw errors leave this package as
:class:`~sqlq.exceptions.StorageError` naming the file (:meth:`Connections._error`).
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any, Callable, Optional

import apsw

from sqlq.exceptions import (
    ConfigurationError,
    DatabaseLockedError,
    StorageCorruptError,
    StorageError,
)
from sqlq.storage.base import Storage
from sqlq.storage.sqlite import _guard, _schema
from sqlq.storage.sqlite._guard import FileGuard

#: Connections inherited across fork. They must never be used or closed in the child (closing
#: would, for instance, release POSIX locks the parent still relies on), so a reference is kept
#: here forever and they are never finalised.
_ABANDONED: list[Any] = []

SYNCHRONOUS_MODES = ('NORMAL', 'FULL', 'OFF')

#: ``wal_autocheckpoint`` (pages) of connections whose checkpoints are not deferred: a
#: producer's. Twice the WAL a running consumer rewinds from (``Upkeep.rewind_frames``), not
#: SQLite's 1000: a commit that runs the auto-checkpoint copies the WAL and syncs the file
#: before it returns, which made a producer's single enqueue take 5 ms (p50) while a consumer
#: drained (bench/wal.py). Without a consumer, the WAL is folded from 32 MB on.
AUTOCHECKPOINT_PAGES = 8192

#: Seconds a worker woken for a new task retries for the lock without sleeping (the producer
#: wakes it while still holding the lock, just before its commit).
BUSY_SPIN = 0.0005


def _busy_handler(timeout: float, local: Any) -> Callable[[int], bool]:
    """A busy handler waiting up to ``timeout`` seconds for a lock, in short steps.

    SQLite's own (``busy_timeout``) sleeps 1, 2, 5, 10... ms between tries; sqlq's writers
    hold the lock for tens of microseconds, so a worker would sleep far longer than the lock
    is held and several workers drain slower than one. Here the waits start at 50 us and
    grow to 2 ms -- except for a worker just woken for a new task (``local.expect_commit``),
    which yields for up to BUSY_SPIN seconds first.
    """
    deadline = [0.0]
    spin_until = [0.0]

    def busy(tries: int) -> bool:
        now = time.monotonic()
        if tries == 0:
            deadline[0] = now + timeout
            spin_until[0] = now + BUSY_SPIN if getattr(local, 'expect_commit', False) else 0.0
        elif now >= deadline[0]:
            return False
        if now < spin_until[0]:
            time.sleep(0)  # the producer that woke us is about to commit: just yield
        else:
            time.sleep(min(0.00005 * tries, 0.002))
        return True

    return busy


class Connections(Storage):
    """The connection layer of :class:`~sqlq.storage.sqlite.SqliteStorage`: its options,
    each thread's connection (:meth:`_conn`) and state (``_local``), statements with their
    errors mapped, and closing."""

    #: Checks the files' owners before opening; refuses writes while another copy of SQLite
    #: in this process uses the file (:mod:`~sqlq.storage.sqlite._guard`).
    _guard: FileGuard

    def __init__(self, filename: str, name: str, *, synchronous: str, timeout: float,
                 clock: Callable[[], float], cache_size: Optional[int],
                 flag_prefix: Optional[str]) -> None:
        super().__init__(name, clock=clock, flag_prefix=flag_prefix)
        filename = os.fspath(filename)
        if not isinstance(filename, str) or filename in ('', ':memory:') \
                or filename.startswith('file:'):
            raise ConfigurationError(
                'SqliteStorage needs a plain file path, not %r (use MemoryStorage for an '
                'in-memory queue)' % (filename,))
        mode = str(synchronous).upper()
        if mode not in SYNCHRONOUS_MODES:
            raise ConfigurationError('synchronous must be one of %s, not %r'
                                     % (', '.join(SYNCHRONOUS_MODES), synchronous))
        try:
            timeout = float(timeout)
        except (TypeError, ValueError):
            raise ConfigurationError('timeout must be a number of seconds, not %r'
                                     % (timeout,)) from None
        if timeout < 0:
            raise ConfigurationError('timeout must be >= 0, not %r' % (timeout,))
        if cache_size is not None and not isinstance(cache_size, int):
            raise ConfigurationError('cache_size must be an integer, not %r' % (cache_size,))
        self.filename = os.path.abspath(filename)
        self.synchronous = mode
        self.timeout = timeout
        self._autocheckpoint = AUTOCHECKPOINT_PAGES
        self.cache_size = cache_size
        self._closed = False
        self._schema_ready = False
        self._reset_connections(os.getpid())

    def _reset_connections(self, pid: int) -> None:
        self._pid = pid
        self._conns_lock = threading.Lock()
        self._conns: list[Any] = []
        self._local = threading.local()

    def _conn(self) -> Any:
        """This thread's connection, opened on first use (and again after fork)."""
        if self._closed:
            raise StorageError('storage %r on %r is closed' % (self.name, self.filename))
        pid = os.getpid()
        if pid != self._pid:
            _ABANDONED.extend(self._conns)
            self._reset_connections(pid)
        conn = getattr(self._local, 'conn', None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            with self._conns_lock:  # before _start_thread, which may raise: close() sees it
                self._conns.append(conn)
            self._start_thread(self._local, conn)
        return conn

    def _start_thread(self, local: threading.local, conn: Any) -> None:
        """Set up the state a thread keeps in ``local`` beside its new connection ``conn``
        (each layer of the storage adds its own, calling ``super()``)."""

    def _error(self, exc: BaseException, doing: str) -> StorageError:
        path = self.filename
        if isinstance(exc, (apsw.BusyError, apsw.LockedError)):
            return DatabaseLockedError(
                'sqlq database %r stayed locked by another connection for more than the busy '
                'timeout (%gs) while %s: %s' % (path, self.timeout, doing, exc))
        if isinstance(exc, (apsw.CorruptError, apsw.NotADBError)):  # SQLITE_CORRUPT/NOTADB
            return StorageCorruptError.of_file(path, 'SQLite: %s, while %s' % (exc, doing),
                                               header=isinstance(exc, apsw.NotADBError))
        return StorageError('sqlq database %r: %s while %s: %s'
                            % (path, type(exc).__name__, doing, exc))

    def _open(self) -> Any:
        path = self.filename
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            raise StorageError('cannot open sqlq database %r: directory %r does not exist'
                               % (path, directory))
        if not os.access(directory, os.W_OK | os.X_OK):
            raise StorageError('cannot open sqlq database %r: directory %r is not writable '
                               '(SQLite creates its -wal and -shm files there)'
                               % (path, directory))
        if os.path.isdir(path):
            raise StorageError('cannot open sqlq database %r: it is a directory' % (path,))
        try:  # a new database is private to its user; another process may win the race
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        except OSError as exc:
            raise StorageError('cannot create sqlq database %r: %s' % (path, exc)) from exc
        self._guard.check_files()  # another user's file: refused before SQLite reads it
        try:
            conn = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READWRITE)
        except apsw.Error as exc:
            full = isinstance(exc, (apsw.IOError, apsw.FullError)) and _guard.full_disk(path, exc)
            raise StorageError(full or 'cannot open sqlq database %r: %s: %s'
                               % (path, type(exc).__name__, exc)) from exc
        try:
            self._restore_busy_handler(conn)
            # Opening a brand-new file races with other processes doing the same; switching to
            # WAL can fail with SQLITE_BUSY at once (without the busy handler), so the whole
            # idempotent setup is retried until the busy timeout runs out.
            deadline = time.monotonic() + self.timeout
            delay = 0.001
            while True:
                try:
                    self._setup(conn)
                    break
                except (apsw.BusyError, apsw.LockedError):
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(delay)
                    delay = min(delay * 2, 0.05)
        except BaseException as exc:
            conn.close()
            full = isinstance(exc, (apsw.IOError, apsw.FullError)) and _guard.full_disk(path, exc)
            if full:
                raise StorageError(full) from exc
            if isinstance(exc, apsw.Error):
                raise self._error(exc, 'opening it') from exc
            raise
        return conn

    def _setup(self, conn: Any) -> None:
        """Per-connection settings, plus identity check and migration on the first one."""
        if not self._schema_ready:
            _schema.check_identity(conn, self.filename)  # before anything writes to a foreign file
        mode = conn.execute('PRAGMA journal_mode').fetchall()[0][0]
        if str(mode).lower() != 'wal':  # persistent in the file: only the first opener sets it
            if conn.execute('PRAGMA page_count').fetchall()[0][0] == 0:
                # A brand-new file: auto_vacuum only takes effect before the first page is
                # written -- which the switch to WAL does.
                conn.execute('PRAGMA auto_vacuum=INCREMENTAL')
            mode = conn.execute('PRAGMA journal_mode=WAL').fetchall()[0][0]
            if str(mode).lower() != 'wal':
                raise StorageError('cannot put sqlq database %r in WAL mode (journal_mode is '
                                   '%r)' % (self.filename, mode))
        conn.execute('PRAGMA synchronous=' + self.synchronous)
        conn.execute('PRAGMA wal_autocheckpoint=%d' % self._autocheckpoint).fetchall()
        conn.execute('PRAGMA journal_size_limit=%d' % _schema.JOURNAL_SIZE_LIMIT).fetchall()
        if self.cache_size is not None:
            conn.execute('PRAGMA cache_size=%d' % self.cache_size)
        if not self._schema_ready:
            _schema.migrate(conn, self.filename)
            self._schema_ready = True

    def _restore_busy_handler(self, conn: Any) -> None:
        """Give ``conn`` (again) this storage's busy handler."""
        conn.set_busy_handler(_busy_handler(self.timeout, self._local))

    def _set_autocheckpoint(self, pages: int) -> None:
        """``PRAGMA wal_autocheckpoint`` of this process's connections, open and future."""
        self._autocheckpoint = pages
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.execute('PRAGMA wal_autocheckpoint=%d' % pages).fetchall()
            except apsw.Error as exc:
                raise self._error(exc, 'setting wal_autocheckpoint') from exc

    def _close_connections(self) -> None:
        """Close this process's connections (those inherited across fork: abandon them)."""
        if os.getpid() != self._pid:  # inherited across fork: not ours to close
            _ABANDONED.extend(self._conns)
            self._conns = []
            return
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(apsw.Error):
                conn.close()
        self._local = threading.local()

    # ------------------------------------------------------------------ statements

    def _rows(self, sql: str, params: Any = (), doing: str = 'reading') -> list[Any]:
        conn = self._conn()
        try:
            rows: list[Any] = conn.execute(sql, params).fetchall()
        except apsw.Error as exc:
            raise self._error(exc, doing) from exc
        return rows

    def _scalar(self, sql: str, params: Any = ()) -> Any:
        rows = self._rows(sql, params)
        return rows[0][0] if rows else None

    def _data_version(self, conn: Any) -> int:
        """``PRAGMA data_version``: changes when *another* connection commits."""
        try:
            version: int = conn.execute('PRAGMA data_version').fetchall()[0][0]
        except apsw.Error as exc:
            raise self._error(exc, 'reading data_version') from exc
        return version

    def _do(self, conn: Any, sql: str, params: Any = ()) -> list[Any]:
        """Run a statement inside a write transaction; return its rows."""
        try:
            rows: list[Any] = conn.execute(sql, params).fetchall()
        except apsw.Error as exc:
            raise self._error(exc, 'writing') from exc
        return rows
