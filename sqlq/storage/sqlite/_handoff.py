"""Hand-off: a single enqueue gives its message straight to an idle worker thread.

Worker threads run inside :meth:`HandOff.worker_session`. While a worker's queue is empty, it
is registered in ``idle_worker`` (in the transaction of the claim that found nothing). A
single enqueue outside a transaction that finds its queue with no ready message takes one
registration (:meth:`HandOff._idle_worker`) and inserts its message already claimed for that
worker, in its own transaction; after its commit it sends the message in the worker's wake-up
datagram (:meth:`HandOff._hand_off`, format :data:`_DATAGRAM`): the worker starts it without a
claim statement of its own (:meth:`HandOff._accept_hand_offs`). A datagram that cannot be
delivered makes the message ordinary again (:meth:`HandOff._take_back`); one that never came
(its producer died) is noticed at the worker's next check (:meth:`HandOff._take_handed`).
"""
from __future__ import annotations

import contextlib
import logging
import secrets
import struct
import threading
from typing import Any, Iterator, Optional

from sqlq.exceptions import StorageError
from sqlq.storage._common import warn_hand_offs_kept
from sqlq.storage.sqlite import _sql, _wakeup
from sqlq.storage.sqlite._transaction import Transactions
from sqlq.storage.types import Claim, Receipt

logger = logging.getLogger(__name__)

#: The datagram of a handed message: b'H', message id, priority, revoke flags (-1 unknown, 0,
#: 1), length of the registration token; then the token and the message bytes.
_DATAGRAM = struct.Struct('<cqqbB')
#: Largest message handed off (bigger ones are enqueued for an ordinary claim): its datagram,
#: with the longest token, fits a receiver's buffer.
HAND_OFF_MAX = _wakeup.MESSAGE_MAX - _DATAGRAM.size - 255

#: A registration taken by an enqueue: (token, owner, socket path, revoke flags or None).
IdleWorker = tuple[str, str, str, Optional[int]]


class HandOff(Transactions):
    """The hand-off layer: worker sessions, idle registrations (``_local.idle_token``) and
    the claims handed to this thread (``_local.handed``)."""

    def _start_thread(self, local: threading.local, conn: Any) -> None:
        super()._start_thread(local, conn)
        local.idle_token = None  # this worker thread's registration (hand-off)
        local.handed = []  # claims handed to it, not yet returned by dequeue_many

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
        local.poll_rank = self._wake.rank_poller('q')  # see claim_outranking
        try:
            yield
        finally:
            self._end_worker_session(local)

    def _register_idle(self) -> None:
        local = self._local
        path = self._wake.socket_path('q')
        if path is None:
            return
        local.registrations += 1
        token = '%s%d' % (local.serving, local.registrations)
        with self._tx() as conn:
            self._do(conn, _sql.REGISTER_IDLE, (token, self.name, self.owner_id, path,
                                                self._clock()))
        local.idle_token = token

    def _take_handed(self, conn: Any, token: str, owner: str) -> list[Any]:
        """Inside a registered worker's claim: deregister ``token``; the rows of messages
        handed to it whose datagram never came (its registration was taken)."""
        self._do(conn, _sql.DEREGISTER, (token,))
        if conn.changes():
            return []
        return self._do(conn, _sql.TAKE_HANDED, (token, owner, self.name))

    def _idle_worker(self, conn: Any, params: tuple[Any, ...]) -> Optional[IdleWorker]:
        """Inside the enqueue's transaction: take an idle worker's registration if the queue
        has no ready message; ``(token, owner, socket, revoke flags or None)`` or None."""
        rows = conn.execute(_sql.IDLE_WORKER, (params[0], self._local.idle_token or '')
                            ).fetchall()
        if not rows:
            return None
        token, owner, path = rows[0]
        low, high = (None, None) if self.flag_prefix is None else \
            _sql.prefix_range(self.flag_prefix)
        ready, flagged = conn.execute(_sql.HAND_OFF_CHECK, (params[0], low, high)).fetchall()[0]
        if ready:
            return None
        conn.execute(_sql.DEREGISTER, (token,))
        return token, owner, path, flagged

    def _hand_off(self, idle: IdleWorker, msg_id: int, priority: int, data: bytes) -> None:
        """After the enqueue's commit: send message ``msg_id``, claimed for the ``idle``
        worker, in its wake-up datagram; take it back if that fails."""
        token, _, path, flagged = idle
        token_bytes = token.encode('ascii')
        message = b''.join((_DATAGRAM.pack(b'H', msg_id, priority,
                                           -1 if flagged is None else flagged,
                                           len(token_bytes)), token_bytes, data))
        if not self._wake.send(path, message):
            self._take_back(msg_id, token)

    def _take_back(self, msg_id: int, token: str) -> None:
        """Make a handed message whose datagram was not delivered ready for any worker."""
        try:
            with self._tx() as conn:
                self._do(conn, _sql.TAKE_BACK, (msg_id, token))
                if conn.changes():
                    self._touch('q')
        except StorageError as exc:
            # It is committed and claimed for a worker that either takes it at its next check
            # or, if its process is gone, loses it to dead-owner recovery: not lost.
            logger.warning('could not take back message %d after a failed hand-off (%s); its '
                           'worker or dead-owner recovery will run it', msg_id, exc)

    def _accept_hand_offs(self, local: threading.local) -> None:
        """Turn the messages received with this thread's wake-ups into claims to return."""
        for message in self._wake.take_messages('q'):
            try:
                _, msg_id, priority, flagged, size = _DATAGRAM.unpack_from(message)
            except struct.error:
                continue
            start = _DATAGRAM.size + size
            token = message[_DATAGRAM.size:start].decode('ascii', 'replace')
            owner = self.owner_id
            claim = Claim(message[start:], Receipt(msg_id, owner, 1), 1, 0, priority, msg_id,
                          None if flagged < 0 else bool(flagged), True)  # started: handed
            if token == local.idle_token:
                local.idle_token = None
                local.handed.append(claim)
            elif token.startswith(getattr(local, 'serving', None) or '\0') and self._rows(
                    _sql.TAKE_HANDED_ONE, (msg_id, token, owner),
                    doing='taking a handed message'):
                # A registration this thread no longer counted on (its deregistration was
                # rolled back): the message is still ours. Otherwise our claim took it already.
                local.handed.append(claim._replace(flagged=None))

    def _end_worker_session(self, local: threading.local) -> None:
        """Deregister; release messages handed to this thread and never returned."""
        prefix, local.serving = local.serving, None
        local.idle_token, local.handed, local.poll_rank = None, [], None
        path = self._wake.socket_path('q')
        try:
            with self._tx() as conn:
                if path is not None:
                    self._do(conn, _sql.DEREGISTER_SOCKET, (path,))
                self._do(conn, _sql.RELEASE_HANDED,
                         (self.owner_id, self.name, prefix, prefix[:-1] + '/'))
                if conn.changes():
                    self._touch('q')
        except StorageError as exc:
            warn_hand_offs_kept(exc)
        # The worker is done waiting; a process worker ends with os._exit, which would leave
        # its socket file behind.
        self._wake.unlisten('q')
