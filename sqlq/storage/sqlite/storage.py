""":class:`SqliteStorage`: the storage contract on one SQLite file, assembled from one class
per concern (see the package docstring for the map)."""
from __future__ import annotations

import time
from typing import Callable, Optional

from sqlq.storage.sqlite import _sql, _wakeup
from sqlq.storage.sqlite._dead_letters import DeadLetters
from sqlq.storage.sqlite._guard import FileGuard
from sqlq.storage.sqlite._kv import KeyValue
from sqlq.storage.sqlite._owners import Owners
from sqlq.storage.sqlite._queue import ReadyQueue
from sqlq.storage.sqlite._schedule import Schedule
from sqlq.storage.sqlite._upkeep import Upkeep
from sqlq.storage.sqlite._wait import Waiting

__all__ = ['SqliteStorage']


class SqliteStorage(ReadyQueue, Schedule, KeyValue, DeadLetters, Owners, Upkeep, Waiting):
    """Byte-level storage in one SQLite file; see :class:`~sqlq.storage.base.Storage`.

    ``filename``: path of the database file, created (mode 0600) if missing; its directory must
    exist and be writable (WAL mode creates ``-wal``/``-shm`` files next to it).
    ``synchronous``: ``'NORMAL'`` (default: durable except for the last transactions on power
    loss), ``'FULL'`` or ``'OFF'``. ``timeout``: seconds to wait for another connection's write
    lock before raising :class:`~sqlq.exceptions.DatabaseLockedError`. ``cache_size``: passed to
    ``PRAGMA cache_size`` (pages if positive, KiB if negative). ``trust_other_users``: accept
    a database, -wal or -shm file owned by another user or writable by group or others
    (refused by default: whoever can write the file can run code in the consumers).

    Raises :class:`~sqlq.exceptions.StorageError` (naming the path) if the file cannot be used:
    missing or read-only directory, not a SQLite database, another application's database, a
    file another user could write (see ``trust_other_users``), or a database created by a
    newer sqlq; :class:`~sqlq.exceptions.DatabaseSharedError` if another copy of SQLite in
    this process has it open.
    """

    def __init__(self, filename: str, name: str = 'sqlq', *, synchronous: str = 'NORMAL',
                 timeout: float = 30.0, clock: Callable[[], float] = time.time,
                 cache_size: Optional[int] = None, flag_prefix: Optional[str] = None,
                 trust_other_users: bool = False) -> None:
        super().__init__(filename, name, synchronous=synchronous, timeout=timeout, clock=clock,
                         cache_size=cache_size, flag_prefix=flag_prefix)
        self._wake = _wakeup.for_file(self.filename)
        self._guard = FileGuard(self.filename, trust_other_users)
        try:
            self._conn()  # open now: a bad path or foreign file fails at construction
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return '<SqliteStorage %r in %r>' % (self.name, self.filename)

    def flush_all(self) -> None:
        with self._tx() as conn:
            for statement in _sql.FLUSH_ALL:
                self._do(conn, statement, (self.name,))
            self._touch('d')

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.close()  # unlinks the wake-up sockets this process bound
        self._close_connections()
        self._guard.close()
