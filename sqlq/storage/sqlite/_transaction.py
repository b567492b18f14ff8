"""Write transactions of SQLite storage, and the wake-ups sent after their commits.

Every write runs in ``BEGIN IMMEDIATE`` (a deferred read transaction that later upgrades to a
write fails at once with SQLITE_BUSY in WAL mode instead of waiting for the busy timeout).
:meth:`Transactions.transaction` uses the same mechanism, so storage calls made inside an
application's transaction simply join it; nested blocks become SAVEPOINTs.

Each write method records the *topics* it changed in its thread's transaction
(:meth:`Transactions._touch`: ``'q'`` a message became ready, ``'s'`` a message was scheduled,
``'d'`` key/value data). After the outermost commit of a transaction that changed rows, the
writer wakes the threads waiting on the same file for one of those topics, and the threads
waiting without a topic (:mod:`sqlq.storage.sqlite._wakeup`).
"""
from __future__ import annotations

import contextlib
import os
import threading
from typing import Any, Iterator, Optional

import apsw

from sqlq.exceptions import StorageError
from sqlq.storage.sqlite._connection import Connections
from sqlq.storage.sqlite._wakeup import WakeupChannel

#: Deepest nesting of transaction() blocks.
_MAX_DEPTH = 64
# Statements per nesting depth (0: the outermost transaction, then savepoints): constant SQL
# text keeps apsw's statement cache warm.
_BEGIN = ('BEGIN IMMEDIATE',) + tuple('SAVEPOINT sqlq_%d' % i for i in range(1, _MAX_DEPTH))
_COMMIT = ('COMMIT',) + tuple('RELEASE sqlq_%d' % i for i in range(1, _MAX_DEPTH))
_ROLLBACK_TO = tuple('ROLLBACK TO sqlq_%d' % i for i in range(_MAX_DEPTH))


class Transactions(Connections):
    """The transaction layer: the ``BEGIN IMMEDIATE``/savepoint stack of each thread
    (``_local.depth``), the topics its transaction touched (``_local.topics``) and the
    wake-ups sent for them."""

    #: Wake-up notifications between the processes and threads using this file.
    _wake: WakeupChannel

    def _start_thread(self, local: threading.local, conn: Any) -> None:
        super()._start_thread(local, conn)
        local.depth = 0
        self._guard.opened()

    def _begin(self, conn: Any, depth: int = 0) -> None:
        """Start the transaction (``depth`` 0) or savepoint of nesting ``depth``."""
        if not depth:
            self._guard.check()
        try:
            conn.execute(_BEGIN[depth])
        except apsw.Error as exc:
            raise self._error(exc, 'starting a write transaction') from exc

    def _commit(self, conn: Any, depth: int = 0) -> None:
        """Commit what :meth:`_begin` started; an outermost transaction that fails to commit
        is rolled back."""
        try:
            conn.execute(_COMMIT[depth])
        except BaseException as exc:
            if depth == 0 and conn.in_transaction:
                with contextlib.suppress(apsw.Error):
                    conn.execute('ROLLBACK')
            if isinstance(exc, apsw.Error):
                raise self._error(exc, 'committing') from exc
            raise

    @staticmethod
    def _roll_back(conn: Any, depth: int = 0) -> None:
        """Undo what :meth:`_begin` started, as an exception leaves it (so quietly: the
        original exception matters more)."""
        if conn.in_transaction:
            try:
                if depth == 0:
                    conn.execute('ROLLBACK')
                else:
                    conn.execute(_ROLLBACK_TO[depth])
                    conn.execute(_COMMIT[depth])  # RELEASE: the undone savepoint ends too
            except apsw.Error:
                pass

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
        if depth >= _MAX_DEPTH:
            raise StorageError('transactions nested more than %d deep' % _MAX_DEPTH)
        self._begin(conn, depth)
        if depth == 0:
            changes = conn.total_changes()
            local.topics = set()
            local.rank = None
            saved_topics: Optional[set[str]] = None
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
            self._roll_back(conn, depth)
            raise
        local.depth = depth
        if depth == 0 and 'q' in local.topics and conn.total_changes() != changes:
            # Workers woken for new tasks claim them with a write transaction, which waits for
            # this commit: waking them now overlaps their wake-up with the commit. (Readers --
            # other topics -- are woken after it: they would see the old state.)
            self._wake.notify(('q',), untopical=False, rank=local.rank)
            local.topics.discard('q')
        self._commit(conn, depth)
        # Only after the outermost commit (a woken waiter must see the data), and only if
        # rows changed: an empty dequeue or read_schedule wakes nobody. Topic waiters are
        # woken only for the topics the transaction touched; waiters without a topic always.
        if depth == 0 and conn.total_changes() != changes:
            self._wake.notify(local.topics)

    def _touch(self, topic: str) -> None:
        """Record that the current write transaction changed ``topic`` (a code of
        :data:`~sqlq.storage.sqlite._wakeup.TOPICS`): its waiters are woken after the
        commit."""
        self._local.topics.add(topic)

    def _rank(self, priority: int) -> None:
        """Record that the current write transaction made a message of ``priority`` ready:
        busy workers are told the highest such priority with their wake-up."""
        local = self._local
        if local.rank is None or priority > local.rank:
            local.rank = priority

    def transaction(self) -> contextlib.AbstractContextManager[Any]:
        return self._tx(savepoint=True)

    def _in_transaction(self) -> bool:
        return bool(getattr(self._local, 'depth', 0)) and os.getpid() == self._pid
