"""Upkeep of the SQLite file: expired keys, WAL checkpoints, free pages, and statistics.

A worker process defers the WAL checkpoints of its connections (:meth:`Upkeep.defer_checkpoints`)
and runs them from its maintenance thread instead (:meth:`Upkeep.checkpoint`,
:meth:`Upkeep.maintenance`); :meth:`Upkeep.vacuum` is the operator's full rewrite.
"""
from __future__ import annotations

import os
from typing import Any

import apsw

from sqlq.exceptions import StorageError
from sqlq.storage.sqlite import _sql
from sqlq.storage.sqlite._connection import AUTOCHECKPOINT_PAGES
from sqlq.storage.sqlite._transaction import Transactions


class Upkeep(Transactions):
    """Purge expired keys, checkpoint the WAL, return free pages, report sizes and counts."""

    #: Most free pages :meth:`maintenance` returns to the file system in one call.
    vacuum_pages = 2048

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
                self._restore_busy_handler(conn)
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
