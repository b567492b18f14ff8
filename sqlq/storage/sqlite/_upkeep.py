"""Upkeep of the SQLite file: expired keys, WAL checkpoints, free pages, and statistics.

A worker process defers the WAL checkpoints of its connections (:meth:`Upkeep.defer_checkpoints`)
and runs them from its maintenance thread instead (:meth:`Upkeep.checkpoint`,
:meth:`Upkeep.maintenance`); :meth:`Upkeep.vacuum` is the operator's full rewrite.

Keeping the WAL small. SQLite writes new frames at the end of the WAL until a writer finds the
whole WAL copied into the database and no reader still using any of its frames: only then does
it start again at the beginning (and cut the file back to ``journal_size_limit``). PASSIVE
checkpoints never wait, so while several processes keep writing they never catch up and the
WAL grows without bound (1.9 GB for a 1M-task drain). So :meth:`Upkeep.checkpoint` copies
what it can without waiting (PASSIVE, once more if that took long: the frames written
meanwhile), and once the WAL holds :attr:`Upkeep.rewind_frames` frames it runs a RESTART
checkpoint, which takes the write lock, copies the few frames left (syncing the WAL and the
database, as every checkpoint does), and waits for the readers of old frames to finish -- with
SQLite's busy handler, which gives up once it has slept :attr:`Upkeep.rewind_wait` seconds, or
(``fine_waits``, for a consumer of process workers) one retrying every 0.1 ms, which wins the
write lock from busy workers far more often (bench/wal.py, 200k drain, 4 process workers: 80-90 %
of rewinds instead of 50-60 %). So writers wait behind it for that copy and sync plus at most
``rewind_wait``. The next commit then
writes from the beginning of the WAL. If the RESTART gives up, the next call tries again; once
the WAL holds twice ``rewind_frames`` (32 MB) it waits up to four times longer, twice.
SQLite does not wait for another connection's checkpoint (another process's auto-checkpoint):
each checkpoint here starts again every 0.5 ms for up to 10 ms while one runs.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable

import apsw

from sqlq.exceptions import StorageError
from sqlq.storage.sqlite import _sql
from sqlq.storage.sqlite._connection import AUTOCHECKPOINT_PAGES
from sqlq.storage.sqlite._transaction import Transactions

#: A PASSIVE checkpoint that took longer than this (seconds) is followed by another one, which
#: copies what was written meanwhile, before the WAL is rewound.
_CATCH_UP = 0.002
#: Most PASSIVE checkpoints before a rewind.
_PASSIVE_ROUNDS = 4
#: A WAL holding this many times ``rewind_frames`` (32 MB: half ``journal_size_limit``) is
#: rewound with four times the wait, and tried twice.
_URGENT = 2
#: Seconds a checkpoint keeps trying to start while another connection is checkpointing.
_OTHER_CHECKPOINT = 0.01
#: Seconds between two tries for a lock of a rewind with ``fine_waits``.
_FINE_STEP = 0.0001


def _fine_busy_handler(wait: float) -> Callable[[int], bool]:
    """A busy handler retrying every :data:`_FINE_STEP` seconds for ``wait`` seconds."""
    deadline = time.monotonic() + wait

    def busy(tries: int) -> bool:
        if time.monotonic() >= deadline:
            return False
        time.sleep(_FINE_STEP)
        return True

    return busy


class Upkeep(Transactions):
    """Purge expired keys, checkpoint the WAL, return free pages, report sizes and counts."""

    #: Most free pages :meth:`maintenance` returns to the file system in one call.
    vacuum_pages = 2048
    #: :meth:`checkpoint` rewinds the WAL once it holds this many frames (one page each:
    #: 16 MB). A rewind holds the write lock for a few milliseconds: at SQLite's 1000 pages
    #: a busy consumer rewound every 0.2 s and drained up to 14 % slower (bench/wal.py).
    rewind_frames = 4096
    #: Longest (seconds) a rewinding checkpoint waits, in all, for the write lock and then for
    #: the readers of old frames (writers wait behind the latter).
    rewind_wait = 0.005

    def purge_expired(self) -> int:
        with self._tx() as conn:
            self._do(conn, _sql.PURGE_EXPIRED, (self.name, self._clock()))
            purged: int = conn.changes()
            if purged:
                self._touch('d')
        return purged

    def defer_checkpoints(self, deferred: bool = True) -> None:
        """While deferred, this process's connections do not fold the WAL into the database
        when they commit (SQLite's auto-checkpoint, which syncs the file and made concurrent
        workers wait for it); :meth:`checkpoint` does it instead."""
        self._set_autocheckpoint(0 if deferred else AUTOCHECKPOINT_PAGES)

    def checkpoint(self, *, fine_waits: bool = False) -> dict[str, Any]:
        """Copy what the WAL holds into the database without waiting for other connections
        (``PRAGMA wal_checkpoint(PASSIVE)``), and rewind the WAL (``RESTART``, waiting at most
        :attr:`rewind_wait` seconds; twice, and four times longer, once it holds twice that)
        once it holds :attr:`rewind_frames` frames or more.

        ``fine_waits``: the rewind retries for its locks every :data:`_FINE_STEP` seconds from
        a Python busy handler instead of SQLite's (sleeps of 1, 2, 2 ms), so that it wins the
        write lock from busy writers -- whose own waits are that short -- far more often. Each
        retry needs this process's GIL: only for a caller with no other thread busy in Python
        (a consumer whose workers are processes), or the write lock is held while it waits.

        Returns ``{'wal_frames': frames in the WAL (-1: another checkpoint was running),
        'checkpointed_frames': frames copied back, 'rewound': whether the WAL will be written
        from its beginning again, 'rewind_seconds': time spent in the RESTART checkpoint
        (None if none ran) -- the longest a writer can have waited behind it}``.
        """
        conn = self._conn()
        try:
            log, done = self._passive(conn)
            result: dict[str, Any] = {'wal_frames': log, 'checkpointed_frames': done,
                                      'rewound': False, 'rewind_seconds': None}
            threshold = max(int(self.rewind_frames), 1)
            if log >= threshold:
                # A WAL that grew past _URGENT rewinds (the last ones gave up: readers, other
                # checkpoints) gets a longer wait and a second try: the bound comes first.
                urgent = log >= _URGENT * threshold
                wait = self.rewind_wait * (4 if urgent else 1)
                began = time.monotonic()
                tries = 2 if urgent else 1
                while tries:
                    busy, log, done = self._retrying(
                        lambda: self._bounded_checkpoint(conn, 'RESTART', wait, fine_waits))
                    tries -= 1
                    if not busy:
                        break
                result.update(wal_frames=log, checkpointed_frames=done, rewound=not busy,
                              rewind_seconds=time.monotonic() - began)
        except apsw.Error as exc:
            raise self._error(exc, 'checkpointing') from exc
        return result

    def _passive(self, conn: Any) -> tuple[int, int]:
        """PASSIVE checkpoints: one, and more (up to :data:`_PASSIVE_ROUNDS`) while each
        takes longer than :data:`_CATCH_UP` (others wrote meanwhile). Returns the last one's
        ``(frames in the WAL, frames copied)``; ``(-1, -1)`` if another connection is
        checkpointing."""
        log = done = -1
        for _ in range(_PASSIVE_ROUNDS):
            began = time.monotonic()
            busy, log, done = self._retrying(lambda: self._bounded_checkpoint(conn, 'PASSIVE', 0))
            if busy or time.monotonic() - began < _CATCH_UP:
                break
        return log, done

    @staticmethod
    def _retrying(run: Callable[[], tuple[int, int, int]]) -> tuple[int, int, int]:
        """``run()`` (a checkpoint), again every 0.5 ms for up to :data:`_OTHER_CHECKPOINT`
        seconds while it could not start because another connection is checkpointing (the
        auto-checkpoint of another process's commit: SQLite does not wait for that lock)."""
        deadline = time.monotonic() + _OTHER_CHECKPOINT
        while True:
            busy, log, done = run()
            if log != -1 or time.monotonic() >= deadline:
                return busy, log, done
            time.sleep(0.0005)

    def _bounded_checkpoint(self, conn: Any, mode: str, wait: float,
                            fine_waits: bool = False) -> tuple[int, int, int]:
        """``PRAGMA wal_checkpoint(mode)`` waiting at most ``wait`` seconds for locks:
        ``(busy, frames in the WAL, frames copied)``; busy 1 if it could not finish."""
        if wait > 0 and fine_waits:
            conn.set_busy_handler(_fine_busy_handler(wait))
        elif wait > 0:
            # SQLite's own busy handler (sleeps of 1, 2, 2 ms for 5 ms): it needs no GIL, which
            # a Python one would wait for behind thread workers while this holds the write lock.
            conn.setbusytimeout(max(int(wait * 1000), 1))
        try:
            busy, log, done = conn.execute('PRAGMA wal_checkpoint(%s)' % mode).fetchall()[0]
        except (apsw.BusyError, apsw.LockedError):
            busy, log, done = 1, -1, -1
        finally:
            self._restore_busy_handler(conn)
        return busy, log, done

    def maintenance(self) -> dict[str, Any]:
        """:meth:`purge_expired`; ``PRAGMA incremental_vacuum`` of at most
        :attr:`vacuum_pages` pages (a no-op on files created before ``auto_vacuum`` was set);
        ``PRAGMA wal_checkpoint(TRUNCATE)`` (after a PASSIVE one), waiting at most
        :attr:`rewind_wait` seconds for the write lock and readers of old WAL frames: skipped
        (``'busy'``) if they do not finish by then.

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
            self._passive(conn)  # what is left for the TRUNCATE below to copy is little
            busy, log, done = self._bounded_checkpoint(conn, 'TRUNCATE', self.rewind_wait)
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
        q = (self.name,)

        def one(sql: str, params: tuple[Any, ...] = q) -> Any:
            return conn.execute(sql, params).fetchall()[0][0]

        try:
            own = not conn.in_transaction
            if own:
                conn.execute('BEGIN')  # one snapshot for every count
            try:
                result = {
                    'ready': one(_sql.READY_COUNT),
                    'claimed': one(_sql.CLAIMED_COUNT),
                    'scheduled': one(_sql.SCHEDULE_COUNT),
                    'results': one(_sql.RESULT_COUNT, (self.name, now)),
                    'kv_keys': one(_sql.KEY_COUNT, (self.name, now)),
                    'expired_keys': one(_sql.EXPIRED_COUNT, (self.name, now)),
                    'dead_letters': one(_sql.DEAD_LETTER_COUNT),
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


def _file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
