"""Storage in one SQLite file, through apsw. This is the only sqlq module that imports apsw.

Connections: one per thread (``threading.local``), created on first use, plus a pid guard:
after ``fork`` the child opens fresh connections and never touches (nor closes, nor lets the
garbage collector finalise) the ones it inherited -- they are parked in :data:`_ABANDONED`.
Every connection runs in WAL mode with the configured ``synchronous`` and busy timeout.

Transactions: every write runs in ``BEGIN IMMEDIATE`` (a deferred read transaction that later
upgrades to a write fails at once with SQLITE_BUSY in WAL mode instead of waiting for the busy
timeout). :meth:`SqliteStorage.transaction` uses the same mechanism, so storage calls made
inside an application's transaction simply join it; nested blocks become SAVEPOINTs.

Waiting: :meth:`SqliteStorage.wait_for_change` is push-based. Each write method records the
*topics* it changed in its thread's transaction (``'queue'``: a message became ready,
``'schedule'``: a message was scheduled, ``'data'``: key/value data). After the outermost commit
of a transaction that changed rows, the writer sends one wake-up datagram to each thread waiting
on the same file for one of those topics, and to each thread waiting without a topic
(:mod:`sqlq.storage.sqlite._wakeup`: a directory of ``AF_UNIX`` sockets beside the database, or
under the temporary directory). So an idle worker (``'queue'``) is not woken by acks and result
writes, nor a ``Result.get`` waiter (``'data'``) by enqueues. For waits without a topic,
``PRAGMA data_version`` stays the source of truth: a waiter checks it before blocking and once
more on timeout, so a writer that could not notify (another program, notifications unavailable)
is still seen -- at the latest when the wait times out.

Hand-off: worker threads run inside :meth:`SqliteStorage.worker_session`. A single enqueue
that finds its queue with no ready message claims the message for an idle worker in its own
transaction, and after its commit sends the message in that worker's wake-up datagram: the
worker starts it without a claim statement of its own (see ``worker_session``).
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import secrets
import struct
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import apsw

from sqlq.exceptions import ConfigurationError, DatabaseLockedError, StorageError
from sqlq.storage.base import (
    EMPTY,
    TOPICS,
    Claim,
    ClaimedItem,
    DeadLetter,
    OwnerInfo,
    Storage,
    as_bytes,
    parse_counter,
    parse_owner_id,
    unpack_receipt,
    warn_hand_offs_kept,
)
from sqlq.storage.sqlite import _schema, _wakeup

__all__ = ['SqliteStorage']

logger = logging.getLogger(__name__)

#: Connections inherited across fork. They must never be used or closed in the child (closing
#: would, for instance, release POSIX locks the parent still relies on), so a reference is kept
#: here forever and they are never finalised.
_ABANDONED: list[Any] = []

SYNCHRONOUS_MODES = ('NORMAL', 'FULL', 'OFF')

# Savepoint statements per nesting depth: constant SQL text keeps apsw's statement cache warm.
_SAVEPOINT = tuple('SAVEPOINT sqlq_%d' % i for i in range(64))
_RELEASE = tuple('RELEASE sqlq_%d' % i for i in range(64))
_ROLLBACK_TO = tuple('ROLLBACK TO sqlq_%d' % i for i in range(64))

# A claim inside a transaction reads the head of the ready queue, then marks the same rows
# claimed (the write lock is held in between, so both see the same rows): there, cheaper than
# UPDATE ... RETURNING, which buffers its rows in a temporary table. Outside one, the single
# autocommit UPDATE ... RETURNING below saves the BEGIN and COMMIT statements and wins.
_READY_HEAD = ('SELECT id, data, attempts, recoveries, priority FROM task '
               'WHERE queue = ?3 AND owner IS NULL ORDER BY priority DESC, id LIMIT ?4')
_CLAIM_HEAD = (
    'UPDATE task SET owner = ?1, claimed_at = ?2, attempts = attempts + 1 '
    'WHERE id IN (SELECT id FROM task WHERE queue = ?3 AND owner IS NULL '
    'ORDER BY priority DESC, id LIMIT ?4)')
#: The claim outside a transaction: one autocommit statement (a third of the time of
#: BEGIN/SELECT/UPDATE/COMMIT on a cold CPU, which is what an idle worker woken for a task is).
#: RETURNING gives the updated attempts, in no particular order.
_CLAIM_RETURNING = _CLAIM_HEAD + ' RETURNING id, data, attempts, recoveries, priority'
#: dequeue_many's flag_prefix: whether a key of the range [?5, ?6) exists (in the claim's own
#: statement: a separate read would cost more than the check).
_FLAGGED = 'EXISTS (SELECT 1 FROM kv WHERE queue = ?3 AND key >= ?5 AND key < ?6)'
_CLAIM_RETURNING_FLAGGED = _CLAIM_RETURNING + ', ' + _FLAGGED
_READY_HEAD_FLAGGED = _READY_HEAD.replace(' FROM task ', ', %s FROM task ' % _FLAGGED)
_ANY_READY = 'SELECT 1 FROM task WHERE queue = ? AND owner IS NULL LIMIT 1'
_ENQUEUE = 'INSERT INTO task (queue, priority, data, enqueued_at) VALUES (?, ?, ?, ?)'
#: What every release of a claim sets: a ready row is unowned and handed to nobody.
_UNCLAIMED = 'owner = NULL, claimed_at = NULL, assignee = NULL'
# Hand-off (see SqliteStorage.worker_session): a single enqueue that finds its queue with no
# ready message takes one idle worker's registration and inserts the message already claimed
# for it, in its own transaction; after the commit the message travels in the datagram that
# wakes the worker. The newest registration is taken (its thread ran last: warmest caches).
# The first statement is the cheapest test (an index probe); the rest only run on a hit.
_IDLE_WORKER = ('SELECT token, owner, socket, flag_lo, flag_hi FROM idle_worker '
                'WHERE queue = ?1 AND token != ?2 ORDER BY since DESC LIMIT 1')
_HAND_OFF_CHECK = ('SELECT EXISTS (SELECT 1 FROM task WHERE queue = ?1 AND owner IS NULL), '
                   'CASE WHEN ?2 IS NULL THEN NULL ELSE '
                   'EXISTS (SELECT 1 FROM kv WHERE queue = ?1 AND key >= ?2 AND key < ?3) END')
_ENQUEUE_HANDED = ('INSERT INTO task (queue, priority, data, enqueued_at, owner, claimed_at, '
                   'attempts, assignee) VALUES (?, ?, ?, ?, ?, ?, 1, ?)')
#: A handed message whose datagram could not be delivered becomes an ordinary ready one.
_TAKE_BACK = ('UPDATE task SET ' + _UNCLAIMED + ', attempts = 0 '
              'WHERE id = ? AND assignee = ?')
_REGISTER_IDLE = ('INSERT OR REPLACE INTO idle_worker (token, queue, owner, socket, since, '
                  'flag_lo, flag_hi) VALUES (?, ?, ?, ?, ?, ?, ?)')
#: A registered worker's claim takes what was handed to it but never arrived (no datagram).
_TAKE_HANDED = ('UPDATE task SET assignee = NULL WHERE assignee = ?1 AND owner = ?2 '
                'AND queue = ?3 RETURNING id, data, attempts, recoveries, priority')
#: A registered worker's cheap check after a wait: work is ready, or its registration was
#: taken by a producer whose datagram it did not get.
_READY_OR_HANDED = ('SELECT EXISTS (SELECT 1 FROM task WHERE queue = ?1 AND owner IS NULL) '
                    'OR NOT EXISTS (SELECT 1 FROM idle_worker WHERE token = ?2)')
#: The datagram of a handed message: b'H', message id, priority, revoke flags (-1 unknown, 0,
#: 1), length of the registration token; then the token and the message bytes.
_HAND_OFF = struct.Struct('<cqqbB')
#: Largest message handed off (bigger ones are enqueued for an ordinary claim): its datagram,
#: with the longest token, fits a receiver's buffer.
HAND_OFF_MAX = _wakeup.MESSAGE_MAX - _HAND_OFF.size - 255

#: enqueue_many inserts this many rows per statement.
_INSERT_ROWS = 100
_ENQUEUE_CHUNK = ('INSERT INTO task (queue, priority, data, enqueued_at) VALUES '
                  + ', '.join(['(?, ?, ?, ?)'] * _INSERT_ROWS))
_LIVE = '(expires_at IS NULL OR expires_at > ?)'
#: wait_for_change topic -> the wake-up channel's topic code.
#: SQLite's default wal_autocheckpoint (pages).
_AUTOCHECKPOINT_PAGES = 1000
_TOPIC_CODES = {'queue': 'q', 'schedule': 's', 'data': 'd'}


def _limit(limit: Optional[int]) -> int:
    return -1 if limit is None else max(int(limit), 0)


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


class SqliteStorage(Storage):
    """Byte-level storage in one SQLite file; see :class:`~sqlq.storage.base.Storage`.

    ``filename``: path of the database file, created (mode 0600) if missing; its directory must
    exist and be writable (WAL mode creates ``-wal``/``-shm`` files next to it).
    ``synchronous``: ``'NORMAL'`` (default: durable except for the last transactions on power
    loss), ``'FULL'`` or ``'OFF'``. ``timeout``: seconds to wait for another connection's write
    lock before raising :class:`~sqlq.exceptions.DatabaseLockedError`. ``cache_size``: passed to
    ``PRAGMA cache_size`` (pages if positive, KiB if negative).

    Raises :class:`~sqlq.exceptions.StorageError` (naming the path) if the file cannot be used:
    missing or read-only directory, not a SQLite database, another application's database, or
    a database created by a newer sqlq.
    """

    #: Seconds between two ``PRAGMA data_version`` polls in :meth:`wait_for_change` when
    #: wake-up notifications are unavailable (no usable socket directory).
    poll_interval = 0.005
    #: Longest block on the wake-up socket between two ``PRAGMA data_version`` checks: bounds
    #: how late a commit by a writer that could not notify (another program) is seen.
    recheck_interval = 0.5

    def __init__(self, filename: str, name: str = 'sqlq', *, synchronous: str = 'NORMAL',
                 timeout: float = 30.0, clock: Callable[[], float] = time.time,
                 cache_size: Optional[int] = None) -> None:
        super().__init__(name, clock=clock)
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
        self._autocheckpoint = _AUTOCHECKPOINT_PAGES
        self.cache_size = cache_size
        self._closed = False
        self._schema_ready = False
        #: Wake-up notifications between the processes and threads using this file.
        self._wake = _wakeup.for_file(self.filename)
        self._reset_connections(os.getpid())
        self._conn()  # open now: a bad path or foreign file fails at construction

    def __repr__(self) -> str:
        return '<SqliteStorage %r in %r>' % (self.name, self.filename)

    # ------------------------------------------------------------------ connections

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
            self._local.depth = 0
            self._local.idle_token = None  # this worker thread's registration (hand-off)
            self._local.handed = []  # claims handed to it, not yet returned by dequeue_many
            # Baseline of wait_for_change(): commits by others from now on count as changes.
            self._local.seen_version = self._data_version(conn)
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    def _error(self, exc: BaseException, doing: str) -> StorageError:
        path = self.filename
        if isinstance(exc, (apsw.BusyError, apsw.LockedError)):
            return DatabaseLockedError(
                'sqlq database %r stayed locked by another connection for more than the busy '
                'timeout (%gs) while %s: %s' % (path, self.timeout, doing, exc))
        if isinstance(exc, apsw.NotADBError):
            return StorageError('%r is not a SQLite database (%s)' % (path, exc))
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
        try:
            conn = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READWRITE)
        except apsw.Error as exc:
            raise StorageError('cannot open sqlq database %r: %s: %s'
                               % (path, type(exc).__name__, exc)) from exc
        try:
            conn.set_busy_handler(_busy_handler(self.timeout, self._local))
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
            if isinstance(exc, apsw.Error):
                raise self._error(exc, 'opening it') from exc
            raise
        return conn

    def _setup(self, conn: Any) -> None:
        """Per-connection settings, plus identity check and migration on the first one."""
        if not self._schema_ready:
            self._check_identity(conn)  # before anything writes to a foreign file
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
            self._migrate(conn)
            self._schema_ready = True

    def _check_identity(self, conn: Any) -> int:
        """Refuse foreign or newer databases; return the stored schema version."""
        if not conn.in_transaction:  # one snapshot: another opener may be migrating right now
            conn.execute('BEGIN')
            try:
                return self._check_identity(conn)
            finally:
                if conn.in_transaction:
                    conn.execute('COMMIT')
        path = self.filename
        app_id = conn.execute('PRAGMA application_id').fetchall()[0][0]
        version = conn.execute('PRAGMA user_version').fetchall()[0][0]
        if app_id not in (0, _schema.APPLICATION_ID):
            raise StorageError('%r is a SQLite database of another application '
                               '(application_id %#x), not a sqlq database' % (path, app_id))
        if app_id == 0:
            tables = {row[0] for row in conn.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite!_%' ESCAPE '!'")}
            if version != 0 or not tables <= _schema.TABLES:
                raise StorageError('%r is a SQLite database of another application (tables: '
                                   '%s), not a sqlq database' % (path, ', '.join(sorted(tables))))
        if version > _schema.SCHEMA_VERSION:
            raise StorageError('%r was created by a newer sqlq (schema version %d; this sqlq '
                               'supports up to %d): upgrade sqlq'
                               % (path, version, _schema.SCHEMA_VERSION))
        return version

    def _migrate(self, conn: Any) -> None:
        if self._check_identity(conn) >= _schema.SCHEMA_VERSION:
            return
        conn.execute('BEGIN IMMEDIATE')
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            version = self._check_identity(conn)
            for v in range(version, _schema.SCHEMA_VERSION):
                try:
                    migrate = _schema.MIGRATIONS[v]
                except KeyError:
                    raise StorageError('no migration of sqlq database %r from schema version '
                                       '%d' % (self.filename, v)) from None
                migrate(conn)
            conn.execute('PRAGMA application_id=%d' % _schema.APPLICATION_ID)
            conn.execute('PRAGMA user_version=%d' % _schema.SCHEMA_VERSION)
            conn.execute('COMMIT')
        except BaseException:
            if conn.in_transaction:
                conn.execute('ROLLBACK')
            raise

    # ------------------------------------------------------------------ statements

    def _rows(self, sql: str, params: Any = (), doing: str = 'reading') -> list:
        conn = self._conn()
        try:
            return conn.execute(sql, params).fetchall()
        except apsw.Error as exc:
            raise self._error(exc, doing) from exc

    def _scalar(self, sql: str, params: Any = ()) -> Any:
        rows = self._rows(sql, params)
        return rows[0][0] if rows else None

    def _data_version(self, conn: Any) -> int:
        """``PRAGMA data_version``: changes when *another* connection commits."""
        try:
            return conn.execute('PRAGMA data_version').fetchall()[0][0]
        except apsw.Error as exc:
            raise self._error(exc, 'reading data_version') from exc

    def _do(self, conn: Any, sql: str, params: Any = ()) -> list:
        """Run a statement inside a write transaction; return its rows."""
        try:
            return conn.execute(sql, params).fetchall()
        except apsw.Error as exc:
            raise self._error(exc, 'writing') from exc

    @contextlib.contextmanager
    def _tx(self, savepoint: bool = False) -> Iterator[Any]:
        """BEGIN IMMEDIATE (outermost); commit or roll back.

        Nested: a ``transaction()`` block gets a SAVEPOINT (``savepoint=True``) so that it can
        be undone alone; a storage operation simply joins the enclosing transaction, whose
        owner rolls everything back if the operation fails.
        """
        conn = self._conn()
        local = self._local
        depth = local.depth
        if depth and not savepoint:
            yield conn
            return
        if depth >= len(_SAVEPOINT):
            raise StorageError('transactions nested more than %d deep' % len(_SAVEPOINT))
        try:
            conn.execute('BEGIN IMMEDIATE' if depth == 0 else _SAVEPOINT[depth])
        except apsw.Error as exc:
            raise self._error(exc, 'starting a write transaction') from exc
        if depth == 0:
            changes = conn.total_changes()
            local.topics = set()
            saved_topics: Optional[set] = None
        else:
            changes = 0
            saved_topics = set(local.topics)
        local.depth = depth + 1
        try:
            yield conn
        except BaseException:
            local.depth = depth
            if saved_topics is not None:  # what the undone block touched is undone too
                local.topics = saved_topics
            if conn.in_transaction:
                try:
                    if depth == 0:
                        conn.execute('ROLLBACK')
                    else:
                        conn.execute(_ROLLBACK_TO[depth])
                        conn.execute(_RELEASE[depth])
                except apsw.Error:
                    pass  # the original exception matters more
            raise
        local.depth = depth
        if depth == 0 and 'q' in local.topics and conn.total_changes() != changes:
            # Workers woken for new tasks claim them with a write transaction, which waits for
            # this commit: waking them now overlaps their wake-up with the commit. (Readers --
            # other topics -- are woken after it: they would see the old state.)
            self._wake.notify(('q',), untopical=False)
            local.topics.discard('q')
        try:
            conn.execute('COMMIT' if depth == 0 else _RELEASE[depth])
        except apsw.Error as exc:
            if depth == 0 and conn.in_transaction:
                with contextlib.suppress(apsw.Error):
                    conn.execute('ROLLBACK')
            raise self._error(exc, 'committing') from exc
        # Only after the outermost commit (a woken waiter must see the data), and only if
        # rows changed: an empty dequeue or read_schedule wakes nobody. Topic waiters are
        # woken only for the topics the transaction touched; waiters without a topic always.
        if depth == 0 and conn.total_changes() != changes:
            self._wake.notify(local.topics)

    def _touch(self, topic: str) -> None:
        """Record that the current write transaction changed ``topic`` (a code of
        :data:`~sqlq.storage.sqlite._wakeup.TOPICS`): its waiters are woken after the commit."""
        self._local.topics.add(topic)

    def transaction(self) -> contextlib.AbstractContextManager[Any]:
        return self._tx(savepoint=True)

    def _in_transaction(self) -> bool:
        return bool(getattr(self._local, 'depth', 0)) and os.getpid() == self._pid

    # ------------------------------------------------------------------ ready queue

    def enqueue(self, data: bytes, priority: int = 0) -> None:
        params = (self.name, priority if type(priority) is int else int(priority),
                  data if type(data) is bytes else as_bytes(data), self._clock())
        if self._in_transaction():
            with self._tx() as conn:  # joins the caller's transaction
                self._do(conn, _ENQUEUE, params)
                self._touch('q')
            return
        # The producer's hot path, on the critical path of a task's wake-up latency: the
        # transaction of _tx() inlined, without its bookkeeping.
        conn = self._conn()
        try:
            conn.execute('BEGIN IMMEDIATE')
        except apsw.Error as exc:
            raise self._error(exc, 'starting a write transaction') from exc
        try:
            listing = self._wake.listing()  # a registered idle worker has a 'q' socket
            idle = self._idle_worker(conn, params) \
                if 'q' in listing.topics and len(params[2]) <= HAND_OFF_MAX else None
            if idle:
                token, owner, path, flagged = idle
                conn.execute(_ENQUEUE_HANDED, params + (owner, params[3], token))
                msg_id = conn.last_insert_rowid()
            else:
                # Idle workers are woken now, while we hold the write lock: their claims wait
                # for our commit, and their wake-up overlaps our insert and commit.
                self._wake.notify(('q',), untopical=False, listing=listing)
                conn.execute(_ENQUEUE, params)
            conn.execute('COMMIT')
        except BaseException as exc:
            if conn.in_transaction:
                with contextlib.suppress(apsw.Error):
                    conn.execute('ROLLBACK')
            if isinstance(exc, apsw.Error):
                raise self._error(exc, 'writing') from exc
            raise
        if idle:
            token_bytes = token.encode('ascii')
            message = b''.join((_HAND_OFF.pack(b'H', msg_id, params[1],
                                               -1 if flagged is None else flagged,
                                               len(token_bytes)), token_bytes, params[2]))
            if not self._wake.send(path, message):
                self._take_back(msg_id, token)
        self._wake.notify(())  # waiters for any change (no topic) must see the commit

    def _idle_worker(self, conn: Any, params: tuple) -> Optional[tuple]:
        """Inside the enqueue's transaction: take an idle worker's registration if the queue
        has no ready message; ``(token, owner, socket, revoke flags or None)`` or None."""
        rows = conn.execute(_IDLE_WORKER, (params[0], self._local.idle_token or '')).fetchall()
        if not rows:
            return None
        token, owner, path, low, high = rows[0]
        ready, flagged = conn.execute(_HAND_OFF_CHECK, (params[0], low, high)).fetchall()[0]
        if ready:
            return None
        conn.execute('DELETE FROM idle_worker WHERE token = ?', (token,))
        return token, owner, path, flagged

    def _take_back(self, msg_id: int, token: str) -> None:
        """Make a handed message whose datagram was not delivered ready for any worker."""
        try:
            with self._tx() as conn:
                self._do(conn, _TAKE_BACK, (msg_id, token))
                if conn.changes():
                    self._touch('q')
        except StorageError as exc:
            # It is committed and claimed for a worker that either takes it at its next check
            # or, if its process is gone, loses it to dead-owner recovery: not lost.
            logger.warning('could not take back message %d after a failed hand-off (%s); its '
                           'worker or dead-owner recovery will run it', msg_id, exc)

    def enqueue_many(self, items: Iterable[tuple[bytes, int]]) -> int:
        now, name = self._clock(), self.name
        params: list[Any] = []
        add = params.extend
        for data, priority in items:
            add((name, priority if type(priority) is int else int(priority),
                 data if type(data) is bytes else as_bytes(data), now))
        count = len(params) // 4
        if not count:
            return 0
        with self._tx() as conn:
            try:
                # Many rows per INSERT statement: about half the cost per row of executemany.
                full = count - count % _INSERT_ROWS
                for start in range(0, full * 4, _INSERT_ROWS * 4):
                    conn.execute(_ENQUEUE_CHUNK, params[start:start + _INSERT_ROWS * 4])
                if full < count:
                    rest = params[full * 4:]
                    conn.executemany(_ENQUEUE, [rest[i:i + 4] for i in range(0, len(rest), 4)])
            except apsw.Error as exc:
                raise self._error(exc, 'writing') from exc
            self._touch('q')
        return count

    def _ready_hint(self, token: Optional[str]) -> bool:
        """False if a cheap read shows no ready task (nor, for a registered idle worker with
        registration ``token``, a message handed to it): an idle consumer polling an empty
        queue then never takes the write lock. Skipped right after a notification (work is
        likely; the read would only add latency) and inside a transaction."""
        local = self._local
        notified = getattr(local, 'last_wake', None) == 'notify'
        local.last_wake = None
        local.expect_commit = notified
        if notified or self._in_transaction():
            return True
        if token is None:
            return bool(self._rows(_ANY_READY, (self.name,)))
        return bool(self._rows(_READY_OR_HANDED, (self.name, token))[0][0])

    def dequeue(self) -> Optional[Claim]:
        claims = self.dequeue_many(1)
        return claims[0] if claims else None

    def dequeue_many(self, limit: int, flag_prefix: Optional[str] = None) -> list[Claim]:
        conn = self._conn()
        local = self._local
        if local.handed:  # handed over by a producer with the wake-up: already claimed
            claims, local.handed = local.handed, []
            local.last_wake = None
            return claims
        token = local.idle_token
        if limit < 1 or not self._ready_hint(token):
            if limit >= 1 and token is None and getattr(local, 'serving', None):
                self._register_idle(flag_prefix)
            return []
        owner, name, limit = self.owner_id, self.name, int(limit)
        params: tuple = (owner, self._clock(), name, limit)
        if flag_prefix is not None:
            params += _prefix_range(flag_prefix)
        checked = flag_prefix is not None
        handed: list = []
        if token is None and not self._in_transaction():
            # A single statement is atomic on its own, and in autocommit mode its wait for
            # the write lock goes through the busy handler. A claim wakes nobody.
            try:
                rows = conn.execute(_CLAIM_RETURNING if flag_prefix is None
                                    else _CLAIM_RETURNING_FLAGGED, params).fetchall()
            except apsw.Error as exc:
                raise self._error(exc, 'claiming') from exc
            if not rows and getattr(local, 'serving', None):
                self._register_idle(flag_prefix)
            added = 0  # RETURNING gives the attempts after the claim
        else:
            local.idle_token = None
            try:
                with self._tx() as conn:  # joins the caller's transaction, if any
                    if token is not None:  # a registered worker claims: it is idle no more
                        self._do(conn, 'DELETE FROM idle_worker WHERE token = ?', (token,))
                        if not conn.changes():  # taken by a producer: its message is ours
                            handed = self._do(conn, _TAKE_HANDED, (token, owner, name))
                    rows = []
                    if limit > len(handed):
                        rows = self._do(conn, _READY_HEAD if flag_prefix is None
                                        else _READY_HEAD_FLAGGED,
                                        params[:3] + (limit - len(handed),) + params[4:])
                        if rows:
                            self._do(conn, _CLAIM_HEAD, params[:3] + (len(rows),))
                    if not rows and not handed and getattr(local, 'serving', None):
                        self._register_idle(flag_prefix)
            except BaseException:
                if token is not None and local.idle_token is None:
                    local.idle_token = token  # rolled back: still registered
                raise
            added = 1
        claims = [Claim(row[1], (row[0], owner, row[2] + added), row[2] + added, row[3],
                        row[4], row[0], bool(row[5]) if checked else None)
                  for row in rows]
        if handed:
            claims += [Claim(row[1], (row[0], owner, row[2]), row[2], row[3], row[4], row[0])
                       for row in handed]
        return claims

    # ------------------------------------------------------------------ hand-off

    @contextlib.contextmanager
    def worker_session(self) -> Iterator[None]:
        """See :meth:`Storage.worker_session`. While the calling thread's queue is empty, it
        is registered in ``idle_worker`` (in the transaction of the claim that found nothing);
        a single :meth:`enqueue` outside a transaction, finding no ready message, then
        deletes one registration, inserts its message claimed for that worker, and after its
        commit sends the message in the worker's wake-up datagram. A datagram that cannot be
        delivered makes the message ordinary again; one that never came (its producer died)
        is noticed at the worker's next check. Registrations of dead processes are removed
        with their claims by :meth:`release_owner`."""
        with contextlib.suppress(StorageError):
            self._conn()  # (after fork: fresh thread state) -- unreachable: the loop backs off
        local = self._local
        if getattr(local, 'serving', None) or not self._wake.listen('q'):
            yield  # nested, or no wake-up sockets here: ordinary claims only
            return
        # The socket is bound before the first check for work: a message enqueued after
        # that check either wakes it or is handed to it.
        local.serving = '%s.' % secrets.token_hex(6)
        local.registrations = 0
        try:
            yield
        finally:
            self._end_worker_session(local)

    def _register_idle(self, flag_prefix: Optional[str]) -> None:
        local = self._local
        path = self._wake.socket_path('q')
        if path is None:
            return
        local.registrations += 1
        token = '%s%d' % (local.serving, local.registrations)
        low, high = _prefix_range(flag_prefix) if flag_prefix is not None else (None, None)
        with self._tx() as conn:
            self._do(conn, _REGISTER_IDLE, (token, self.name, self.owner_id, path,
                                            self._clock(), low, high))
        local.idle_token = token

    def _accept_hand_offs(self, local: Any) -> None:
        """Turn the messages received with this thread's wake-ups into claims to return."""
        for message in self._wake.take_messages('q'):
            try:
                _, msg_id, priority, flagged, size = _HAND_OFF.unpack_from(message)
            except struct.error:
                continue
            start = _HAND_OFF.size + size
            token = message[_HAND_OFF.size:start].decode('ascii', 'replace')
            owner = self.owner_id
            claim = Claim(message[start:], (msg_id, owner, 1), 1, 0, priority, msg_id,
                          None if flagged < 0 else bool(flagged))
            if token == local.idle_token:
                local.idle_token = None
                local.handed.append(claim)
            elif token.startswith(getattr(local, 'serving', None) or '\0') and self._rows(
                    'UPDATE task SET assignee = NULL WHERE id = ? AND assignee = ? AND owner = ? '
                    'RETURNING id', (msg_id, token, owner), doing='taking a handed message'):
                # A registration this thread no longer counted on (its deregistration was
                # rolled back): the message is still ours. Otherwise our claim took it already.
                local.handed.append(claim._replace(flagged=None))

    def _end_worker_session(self, local: Any) -> None:
        """Deregister; release messages handed to this thread and never returned."""
        prefix, local.serving = local.serving, None
        local.idle_token, local.handed = None, []
        path = self._wake.socket_path('q')
        try:
            with self._tx() as conn:
                if path is not None:
                    self._do(conn, 'DELETE FROM idle_worker WHERE socket = ?', (path,))
                self._do(conn, 'UPDATE task SET ' + _UNCLAIMED + ' WHERE owner = ? AND queue = ? '
                               'AND assignee >= ? AND assignee < ?',
                         (self.owner_id, self.name, prefix, prefix[:-1] + '/'))
                if conn.changes():
                    self._touch('q')
        except StorageError as exc:
            warn_hand_offs_kept(exc)
        # The worker is done waiting; a process worker ends with os._exit, which would leave
        # its socket file behind.
        self._wake.unlisten('q')

    def release_unstarted(self, receipts: Iterable[Any]) -> int:
        params = [(*unpack_receipt(receipt), self.name) for receipt in receipts]
        if not params:
            return 0
        with self._tx() as conn:
            before = conn.total_changes()
            try:
                conn.executemany('UPDATE task SET ' + _UNCLAIMED + ' WHERE id = ? '
                                 'AND owner = ? AND attempts = ? AND queue = ?',
                                 params)
            except apsw.Error as exc:
                raise self._error(exc, 'writing') from exc
            released = conn.total_changes() - before
            if released:
                self._touch('q')
        return released

    def complete_many(self, items: Sequence[tuple[Any, Optional[str], Optional[bytes],
                                                  Optional[float]]]) -> list[bool]:
        acks = [(*unpack_receipt(receipt), self.name) for receipt, _, _, _ in items]
        if not acks:
            return []
        with self._tx() as conn:
            try:
                acked = set(conn.executemany(
                    'DELETE FROM task WHERE id = ? AND owner = ? AND attempts = ? AND queue = ? '
                    'RETURNING id, owner, attempts', acks))
                held = [ack[:3] in acked for ack in acks]
                results = [(self.name, key, as_bytes(value), self._expires(ttl))
                           for ok, (_, key, value, ttl) in zip(held, items)
                           if ok and key is not None]
                if results:
                    conn.executemany('INSERT OR REPLACE INTO kv (queue, key, value, is_result, '
                                     'expires_at) VALUES (?, ?, ?, 1, ?)', results)
                    self._touch('d')
            except apsw.Error as exc:
                raise self._error(exc, 'writing') from exc
        return held

    def ack(self, receipt: Any) -> bool:
        msg_id, owner, attempts = unpack_receipt(receipt)
        with self._tx() as conn:
            self._do(conn, 'DELETE FROM task WHERE id = ? AND queue = ? AND owner = ? '
                           'AND attempts = ?', (msg_id, self.name, owner, attempts))
            return conn.changes() > 0

    def release(self, receipt: Any) -> bool:
        msg_id, owner, attempts = unpack_receipt(receipt)
        with self._tx() as conn:
            self._do(conn, 'UPDATE task SET ' + _UNCLAIMED + ' WHERE id = ? AND queue = ? '
                           'AND owner = ? AND attempts = ?',
                     (msg_id, self.name, owner, attempts))
            if conn.changes() > 0:
                self._touch('q')
                return True
            return False

    def bury(self, receipt: Any, reason: str) -> bool:
        msg_id, owner, attempts = unpack_receipt(receipt)
        with self._tx() as conn:
            rows = self._do(conn, 'DELETE FROM task WHERE id = ? AND queue = ? AND owner = ? '
                                  'AND attempts = ? RETURNING data, attempts, enqueued_at',
                            (msg_id, self.name, owner, attempts))
            if not rows:
                return False
            self._do(conn, 'INSERT INTO dead_letter (queue, data, reason, failed_at, attempts, '
                           'enqueued_at) VALUES (?, ?, ?, ?, ?, ?)',
                     (self.name, rows[0][0], str(reason), self._clock(), rows[0][1],
                      rows[0][2]))
            return True

    def queue_size(self) -> int:
        return self._scalar('SELECT count(*) FROM task WHERE queue = ? AND owner IS NULL',
                            (self.name,))

    def claimed_size(self) -> int:
        return self._scalar('SELECT count(*) FROM task WHERE queue = ? AND owner IS NOT NULL',
                            (self.name,))

    def enqueued_items(self, limit: Optional[int] = None) -> list[bytes]:
        return [row[0] for row in self._rows(
            'SELECT data FROM task WHERE queue = ? AND owner IS NULL '
            'ORDER BY priority DESC, id LIMIT ?', (self.name, _limit(limit)))]

    def claimed_items(self) -> list[ClaimedItem]:
        return [ClaimedItem(*row) for row in self._rows(
            'SELECT id, data, owner, claimed_at, attempts, recoveries FROM task '
            'WHERE queue = ? AND owner IS NOT NULL ORDER BY claimed_at, id', (self.name,))]

    def flush_queue(self) -> None:
        with self._tx() as conn:
            self._do(conn, 'DELETE FROM task WHERE queue = ?', (self.name,))

    # ------------------------------------------------------------------ schedule

    def add_to_schedule(self, data: bytes, timestamp: float) -> None:
        params = (self.name, float(timestamp), as_bytes(data))
        with self._tx() as conn:
            self._do(conn, 'INSERT INTO schedule (queue, ts, data) VALUES (?, ?, ?)', params)
            self._touch('s')

    def read_schedule(self, timestamp: float) -> list[bytes]:
        with self._tx() as conn:
            rows = self._do(conn, 'DELETE FROM schedule WHERE queue = ? AND ts <= ? '
                                  'RETURNING ts, id, data', (self.name, float(timestamp)))
        rows.sort(key=lambda row: (row[0], row[1]))  # RETURNING order is unspecified
        return [row[2] for row in rows]

    def next_scheduled_time(self) -> Optional[float]:
        return self._scalar('SELECT min(ts) FROM schedule WHERE queue = ?', (self.name,))

    def scheduled_items(self, limit: Optional[int] = None) -> list[bytes]:
        return [row[0] for row in self._rows(
            'SELECT data FROM schedule WHERE queue = ? ORDER BY ts, id LIMIT ?',
            (self.name, _limit(limit)))]

    def schedule_size(self) -> int:
        return self._scalar('SELECT count(*) FROM schedule WHERE queue = ?', (self.name,))

    def flush_schedule(self) -> None:
        with self._tx() as conn:
            self._do(conn, 'DELETE FROM schedule WHERE queue = ?', (self.name,))

    # ------------------------------------------------------------------ key/value

    def _expires(self, ttl: Optional[float]) -> Optional[float]:
        return None if ttl is None else self._clock() + float(ttl)

    def _is_live(self, expires_at: Optional[float], now: Optional[float] = None) -> bool:
        return expires_at is None or expires_at > (self._clock() if now is None else now)

    def put_data(self, key: str, value: bytes, is_result: bool = False,
                 ttl: Optional[float] = None) -> None:
        params = (self.name, key, as_bytes(value), int(bool(is_result)), self._expires(ttl))
        with self._tx() as conn:
            self._do(conn, 'INSERT OR REPLACE INTO kv (queue, key, value, is_result, '
                           'expires_at) VALUES (?, ?, ?, ?, ?)', params)
            self._touch('d')

    def peek_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        rows = self._rows('SELECT key, value, expires_at FROM kv WHERE queue = ? AND key IN (%s)'
                          % ','.join('?' * len(keys)), (self.name, *keys))
        now = self._clock()
        return {key: value for key, value, expires_at in rows if self._is_live(expires_at, now)}

    def peek_data(self, key: str) -> Any:
        rows = self._rows('SELECT value, expires_at FROM kv WHERE queue = ? AND key = ?',
                          (self.name, key))
        if not rows:
            return EMPTY
        value, expires_at = rows[0]
        now = self._clock()
        if self._is_live(expires_at, now):
            return value
        with contextlib.suppress(DatabaseLockedError):  # lazy expiry is best effort
            with self._tx() as conn:
                self._do(conn, 'DELETE FROM kv WHERE queue = ? AND key = ? AND expires_at <= ?',
                         (self.name, key, now))
                self._touch('d')
        return EMPTY

    def pop_data(self, key: str) -> Any:
        with self._tx() as conn:
            rows = self._do(conn, 'DELETE FROM kv WHERE queue = ? AND key = ? '
                                  'RETURNING value, expires_at', (self.name, key))
            if rows:
                self._touch('d')
        if rows and self._is_live(rows[0][1]):
            return rows[0][0]
        return EMPTY

    def delete_data(self, key: str) -> bool:
        with self._tx() as conn:
            rows = self._do(conn, 'DELETE FROM kv WHERE queue = ? AND key = ? '
                                  'RETURNING expires_at', (self.name, key))
            if rows:
                self._touch('d')
        return bool(rows) and self._is_live(rows[0][0])

    def has_data_for_key(self, key: str) -> bool:
        return self.peek_data(key) is not EMPTY

    def put_if_empty(self, key: str, value: bytes, ttl: Optional[float] = None) -> bool:
        now = self._clock()
        expires_at = None if ttl is None else now + float(ttl)
        with self._tx() as conn:
            self._do(conn, 'INSERT INTO kv (queue, key, value, is_result, expires_at) '
                           'VALUES (?, ?, ?, 0, ?) ON CONFLICT (queue, key) DO UPDATE SET '
                           'value = excluded.value, is_result = 0, '
                           'expires_at = excluded.expires_at '
                           'WHERE kv.expires_at IS NOT NULL AND kv.expires_at <= ?',
                     (self.name, key, as_bytes(value), expires_at, now))
            if conn.changes() > 0:
                self._touch('d')
                return True
            return False

    def incr(self, key: str, amount: int = 1, ttl: Optional[float] = None) -> int:
        amount = int(amount)
        now = self._clock()
        with self._tx() as conn:
            rows = self._do(conn, 'SELECT value, is_result, expires_at FROM kv '
                                  'WHERE queue = ? AND key = ?', (self.name, key))
            if rows and self._is_live(rows[0][2], now):
                value = parse_counter(key, rows[0][0]) + amount
                is_result, expires_at = rows[0][1], rows[0][2]
            else:
                value, is_result = amount, 0
                expires_at = None if ttl is None else now + float(ttl)
            self._do(conn, 'INSERT OR REPLACE INTO kv (queue, key, value, is_result, '
                           'expires_at) VALUES (?, ?, ?, ?, ?)',
                     (self.name, key, b'%d' % value, is_result, expires_at))
            self._touch('d')
        return value

    def delete_prefix(self, prefix: str) -> int:
        # A range + substr comparison: no LIKE, so '_' and '%' are ordinary characters.
        with self._tx() as conn:
            rows = self._do(conn, 'DELETE FROM kv WHERE queue = ? AND key >= ? '
                                  'AND substr(key, 1, ?) = ? RETURNING expires_at',
                            (self.name, prefix, len(prefix), prefix))
            if rows:
                self._touch('d')
        now = self._clock()
        return sum(1 for (expires_at,) in rows if self._is_live(expires_at, now))

    def result_store_size(self) -> int:
        return self._scalar('SELECT count(*) FROM kv WHERE queue = ? AND is_result = 1 AND '
                            + _LIVE, (self.name, self._clock()))

    def result_items(self) -> dict[str, bytes]:
        return dict(self._rows('SELECT key, value FROM kv WHERE queue = ? AND is_result = 1 '
                               'AND ' + _LIVE, (self.name, self._clock())))

    def flush_results(self) -> None:
        with self._tx() as conn:
            self._do(conn, 'DELETE FROM kv WHERE queue = ? AND is_result = 1', (self.name,))
            self._touch('d')

    # ------------------------------------------------------------------ dead letters

    def add_dead_letter(self, data: bytes, reason: str, attempts: int = 0,
                        enqueued_at: Optional[float] = None) -> int:
        params = (self.name, as_bytes(data), str(reason), self._clock(), int(attempts),
                  None if enqueued_at is None else float(enqueued_at))
        with self._tx() as conn:
            self._do(conn, 'INSERT INTO dead_letter (queue, data, reason, failed_at, attempts, '
                           'enqueued_at) VALUES (?, ?, ?, ?, ?, ?)', params)
            return conn.last_insert_rowid()

    def dead_letters(self, limit: Optional[int] = None) -> list[DeadLetter]:
        return [DeadLetter(*row) for row in self._rows(
            'SELECT id, data, reason, failed_at, attempts, enqueued_at FROM dead_letter '
            'WHERE queue = ? ORDER BY id LIMIT ?', (self.name, _limit(limit)))]

    def dead_letter(self, id: int) -> Optional[DeadLetter]:
        rows = self._rows('SELECT id, data, reason, failed_at, attempts, enqueued_at '
                          'FROM dead_letter WHERE queue = ? AND id = ?', (self.name, int(id)))
        return DeadLetter(*rows[0]) if rows else None

    def dead_letter_count(self) -> int:
        return self._scalar('SELECT count(*) FROM dead_letter WHERE queue = ?', (self.name,))

    def _take_dead(self, conn: Any, ids: Optional[Iterable[int]]) -> list[tuple[int, bytes]]:
        if ids is None:
            rows = self._do(conn, 'DELETE FROM dead_letter WHERE queue = ? RETURNING id, data',
                            (self.name,))
        else:
            rows = []
            for dead_id in sorted({int(i) for i in ids}):
                rows.extend(self._do(conn, 'DELETE FROM dead_letter WHERE queue = ? AND id = ? '
                                           'RETURNING id, data', (self.name, dead_id)))
        rows.sort(key=lambda row: row[0])
        return rows

    def requeue_dead_letters(self, ids: Optional[Iterable[int]] = None,
                             priority: int = 0) -> int:
        priority = int(priority)
        with self._tx() as conn:
            rows = self._take_dead(conn, ids)
            if rows:
                now = self._clock()
                try:
                    conn.executemany(_ENQUEUE, [(self.name, priority, data, now)
                                                for _, data in rows])
                except apsw.Error as exc:
                    raise self._error(exc, 'writing') from exc
                self._touch('q')
        return len(rows)

    def purge_dead_letters(self, ids: Optional[Iterable[int]] = None) -> int:
        with self._tx() as conn:
            return len(self._take_dead(conn, ids))

    # ------------------------------------------------------------------ owners

    def heartbeat(self, ttl_hint: float = 10.0) -> None:
        owner = self.owner_id
        host, pid = parse_owner_id(owner)
        now = self._clock()
        with self._tx() as conn:
            self._do(conn, 'INSERT INTO owner (id, host, pid, started_at, heartbeat_at) '
                           'VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET '
                           'heartbeat_at = excluded.heartbeat_at', (owner, host, pid, now, now))

    def owners(self) -> list[OwnerInfo]:
        rows = self._rows(
            'SELECT id, host, pid, started_at, heartbeat_at FROM owner UNION '
            'SELECT DISTINCT owner, NULL, NULL, NULL, NULL FROM task WHERE queue = ? '
            'AND owner IS NOT NULL AND owner NOT IN (SELECT id FROM owner) ORDER BY 1',
            (self.name,))
        result = []
        for owner, host, pid, started_at, heartbeat_at in rows:
            if host is None and pid is None:
                host, pid = parse_owner_id(owner)
            result.append(OwnerInfo(owner, host, pid, started_at, heartbeat_at))
        return result

    def claim_owners(self) -> dict[str, int]:
        return dict(self._rows('SELECT owner, count(*) FROM task WHERE queue = ? '
                               'AND owner IS NOT NULL GROUP BY owner', (self.name,)))

    def release_owner(self, owner_id: str) -> int:
        owner_id = str(owner_id)
        with self._tx() as conn:
            # claimed_at is part of the task_claimed index: the owner's rows are found by it.
            self._do(conn, 'UPDATE task SET ' + _UNCLAIMED + ', recoveries = recoveries + 1 '
                           'WHERE owner = ? AND queue = ?',
                     (owner_id, self.name))
            released = conn.changes()
            self._do(conn, 'DELETE FROM idle_worker WHERE owner = ?', (owner_id,))
            if released:
                self._touch('q')
            self._do(conn, 'DELETE FROM owner WHERE id = ? AND NOT EXISTS '
                           '(SELECT 1 FROM task WHERE owner = ?)', (owner_id, owner_id))
        return released

    def forget_owner(self, owner_id: str) -> bool:
        owner_id = str(owner_id)
        with self._tx() as conn:
            self._do(conn, 'DELETE FROM owner WHERE id = ? AND NOT EXISTS '
                           '(SELECT 1 FROM task WHERE owner = ?)', (owner_id, owner_id))
            return conn.changes() > 0

    # ------------------------------------------------------------------ upkeep

    def purge_expired(self) -> int:
        with self._tx() as conn:
            self._do(conn, 'DELETE FROM kv WHERE queue = ? AND expires_at IS NOT NULL '
                           'AND expires_at <= ?', (self.name, self._clock()))
            purged = conn.changes()
            if purged:
                self._touch('d')
        return purged

    #: Most free pages :meth:`maintenance` returns to the file system in one call.
    vacuum_pages = 2048

    def defer_checkpoints(self, deferred: bool = True) -> None:
        """While deferred, this process's connections do not fold the WAL into the database
        when they commit (SQLite's auto-checkpoint, which syncs the file and made concurrent
        workers wait for it); :meth:`checkpoint` does it instead."""
        self._autocheckpoint = 0 if deferred else _AUTOCHECKPOINT_PAGES
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.execute('PRAGMA wal_autocheckpoint=%d' % self._autocheckpoint).fetchall()
            except apsw.Error as exc:
                raise self._error(exc, 'setting wal_autocheckpoint') from exc

    def checkpoint(self) -> None:
        """``PRAGMA wal_checkpoint(PASSIVE)``: copy what the WAL holds into the database
        without waiting for other connections."""
        try:
            self._conn().execute('PRAGMA wal_checkpoint(PASSIVE)').fetchall()
        except (apsw.BusyError, apsw.LockedError):
            pass  # another checkpoint is running; the next call catches up
        except apsw.Error as exc:
            raise self._error(exc, 'checkpointing') from exc

    def maintenance(self) -> dict[str, Any]:
        """:meth:`purge_expired`; ``PRAGMA incremental_vacuum`` of at most
        :attr:`vacuum_pages` pages (a no-op on files created before ``auto_vacuum`` was set);
        ``PRAGMA wal_checkpoint(TRUNCATE)`` with no busy wait: skipped (``'busy'``) if another
        connection is writing or still reading old WAL frames.

        Returns ``{'purged': keys, 'vacuumed_pages': pages freed to the file system,
        'checkpoint': 'truncated' | 'busy', 'wal_frames': frames in the WAL before,
        'checkpointed_frames': frames copied back}``.
        """
        if self._in_transaction():
            raise StorageError('maintenance() cannot be called inside transaction()')
        purged = self.purge_expired()
        conn = self._conn()
        try:
            free_before = conn.execute('PRAGMA freelist_count').fetchall()[0][0]
            vacuumed = 0
            if free_before and conn.execute('PRAGMA auto_vacuum').fetchall()[0][0] == 2:
                conn.execute('PRAGMA incremental_vacuum(%d)' % max(int(self.vacuum_pages), 1)
                             ).fetchall()
                vacuumed = free_before - conn.execute('PRAGMA freelist_count').fetchall()[0][0]
            conn.setbusytimeout(0)  # never wait for readers/writers: skip instead
            try:
                busy, log, done = conn.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchall()[0]
            except (apsw.BusyError, apsw.LockedError):
                busy, log, done = 1, -1, -1
            finally:
                conn.set_busy_handler(_busy_handler(self.timeout, self._local))
        except apsw.Error as exc:
            raise self._error(exc, 'running maintenance') from exc
        return {'purged': purged, 'vacuumed_pages': vacuumed,
                'checkpoint': 'busy' if busy else 'truncated',
                'wal_frames': log, 'checkpointed_frames': done}

    def vacuum(self) -> None:
        """Full ``VACUUM``: rewrites the whole file. It holds the write lock for its whole
        duration (other writers wait up to their busy timeout, then fail) and needs free disk
        space of about the database's size."""
        if self._in_transaction():
            raise StorageError('vacuum() cannot be called inside transaction()')
        conn = self._conn()
        try:
            conn.execute('VACUUM')
            # In WAL mode VACUUM writes the new file through the WAL: move it into the
            # database and truncate the WAL, or the space is not given back.
            conn.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchall()
        except apsw.Error as exc:
            raise self._error(exc, 'vacuuming') from exc

    def stats(self) -> dict[str, Any]:
        now = self._clock()
        conn = self._conn()
        try:
            own = not conn.in_transaction
            if own:
                conn.execute('BEGIN')  # one snapshot for every count
            try:
                q = (self.name,)
                one = lambda sql, params=q: conn.execute(sql, params).fetchall()[0][0]  # noqa: E731
                result = {
                    'ready': one('SELECT count(*) FROM task WHERE queue = ? AND owner IS NULL'),
                    'claimed': one('SELECT count(*) FROM task WHERE queue = ? '
                                   'AND owner IS NOT NULL'),
                    'scheduled': one('SELECT count(*) FROM schedule WHERE queue = ?'),
                    'results': one('SELECT count(*) FROM kv WHERE queue = ? AND is_result = 1 '
                                   'AND ' + _LIVE, (self.name, now)),
                    'kv_keys': one('SELECT count(*) FROM kv WHERE queue = ? AND ' + _LIVE,
                                   (self.name, now)),
                    'expired_keys': one('SELECT count(*) FROM kv WHERE queue = ? AND '
                                        'expires_at IS NOT NULL AND expires_at <= ?',
                                        (self.name, now)),
                    'dead_letters': one('SELECT count(*) FROM dead_letter WHERE queue = ?'),
                    'page_size': one('PRAGMA page_size', ()),
                    'page_count': one('PRAGMA page_count', ()),
                    'freelist_count': one('PRAGMA freelist_count', ()),
                }
            finally:
                if own and conn.in_transaction:
                    conn.execute('COMMIT')
        except apsw.Error as exc:
            raise self._error(exc, 'reading stats') from exc
        result['db_size'] = _file_size(self.filename)
        result['wal_size'] = _file_size(self.filename + '-wal')
        return result

    # ------------------------------------------------------------------ whole storage

    def flush_all(self) -> None:
        with self._tx() as conn:
            for table in ('task', 'schedule', 'kv', 'dead_letter'):
                self._do(conn, 'DELETE FROM %s WHERE queue = ?' % table, (self.name,))
            self._touch('d')

    def wait_for_change(self, timeout: float, topic: Optional[str] = None) -> bool:
        """Block up to ``timeout`` seconds until another connection may have committed.

        ``topic=None``: any commit. ``True`` at once if one committed since this thread last
        looked (its last wait, or the opening of its connection); otherwise blocks on this
        thread's wake-up socket, checking ``data_version`` every :attr:`recheck_interval` and
        once more on timeout (or polls it every :attr:`poll_interval` if notifications are
        unavailable).

        With a ``topic`` (see :data:`~sqlq.storage.base.TOPICS`), only commits that touched
        it wake this thread, through its own socket for that topic. The protocol (race-free
        when followed): the caller checks its data, then calls ``wait_for_change(t, topic)``,
        then checks again, and so on. The first call of a thread for a topic binds the socket
        and returns ``True`` at once (``last_wake == 'bound'``): the caller re-checks, and
        every commit from then on leaves a datagram on the socket. A datagram that arrived
        while the thread was not waiting (between its check and this call) makes the call
        return ``True`` at once; pending datagrams are only ever drained by a call that then
        returns ``True``. ``data_version`` is not consulted (a writer that cannot notify --
        another program -- is seen at the caller's check after the timeout), except when
        notifications are unavailable: then this polls ``data_version`` and wakes for any
        change.
        """
        if self._in_transaction():
            raise StorageError('wait_for_change() cannot be called inside transaction()')
        timeout = max(float(timeout), 0.0)
        conn = self._conn()
        local = self._local
        wake = self._wake
        if topic is not None:
            code = _topic_code(topic)
            if not wake.listening(code):
                if wake.listen(code):
                    local.last_wake = 'bound'
                    return True
                return self._poll_for_change(conn, local, timeout)
            notified = wake.wait(timeout, code)
            local.last_wake = 'notify' if notified else 'timeout'
            if notified and code == 'q':
                self._accept_hand_offs(local)
            return notified
        # Bind this thread's socket *before* reading data_version: a commit either shows in
        # the version read below, or its writer lists the directory after our socket exists.
        listening = wake.listen()
        version = self._data_version(conn)
        if version != local.seen_version:
            local.seen_version = version
            if listening:
                wake.drain()  # covered by the version just read
            local.last_wake = 'version'
            return True
        if not listening:
            return self._poll_for_change(conn, local, timeout)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            notified = wake.wait(min(remaining, self.recheck_interval)) if remaining > 0 \
                else False
            version = self._data_version(conn)
            changed = version != local.seen_version
            if notified or changed or remaining <= self.recheck_interval:
                break
        local.seen_version = version
        local.last_wake = 'notify' if notified else ('version' if changed else 'timeout')
        return notified or changed

    def _poll_for_change(self, conn: Any, local: Any, timeout: float) -> bool:
        """Fallback without notifications: poll ``PRAGMA data_version``."""
        deadline = time.monotonic() + timeout
        start = local.seen_version
        while True:
            remaining = deadline - time.monotonic()
            if remaining > 0:
                time.sleep(min(self.poll_interval, remaining))
            version = self._data_version(conn)
            if version != start:
                local.seen_version = version
                local.last_wake = 'poll'
                return True
            if remaining <= 0:
                local.last_wake = 'timeout'
                return False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.close()  # unlinks the wake-up sockets this process bound
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


@functools.lru_cache(maxsize=16)
def _prefix_range(prefix: str) -> tuple[str, str]:
    """The key range ``[low, high)`` holding the keys that start with ``prefix`` (UTF-8 byte
    order is code point order)."""
    if not prefix:
        raise ValueError('flag_prefix must not be empty')
    last = ord(prefix[-1]) + 1
    if last > 0x10FFFF:  # no next character: every key below this bound
        return prefix, prefix + '\U0010ffff' * 16
    return prefix, prefix[:-1] + chr(0xE000 if 0xD800 <= last <= 0xDFFF else last)


def _file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _topic_code(topic: str) -> str:
    try:
        return _TOPIC_CODES[topic]
    except (KeyError, TypeError):
        raise ValueError('unknown wait_for_change topic %r (expected one of %s)'
                         % (topic, ', '.join(sorted(TOPICS)))) from None
