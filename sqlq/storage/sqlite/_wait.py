"""Waiting for changes in SQLite storage: :meth:`Waiting.wait_for_change`.

Push-based: a thread blocks on its wake-up socket (:mod:`sqlq.storage.sqlite._wakeup`), which
writers notify after their commits (:mod:`sqlq.storage.sqlite._transaction`). So an idle worker
(``'queue'``) is not woken by acks and result writes, nor a ``Result.get`` waiter (``'data'``)
by enqueues. For waits without a topic, ``PRAGMA data_version`` stays the source of truth: a
waiter checks it before blocking and once more on timeout, so a writer that could not notify
(another program, notifications unavailable) is still seen -- at the latest when the wait
times out.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Optional

from sqlq.exceptions import StorageError
from sqlq.storage._common import TOPIC_CODES
from sqlq.storage.sqlite._handoff import HandOff
from sqlq.storage.types import TOPICS

#: wait_for_change topic -> the wake-up channel's topic code.


class Waiting(HandOff):
    """Block until another connection may have committed (``_local.seen_version``: the
    ``data_version`` this thread last saw; ``_local.last_wake``: why its last wait ended)."""

    #: Seconds between two ``PRAGMA data_version`` polls in :meth:`wait_for_change` when
    #: wake-up notifications are unavailable (no usable socket directory, no ``AF_UNIX``,
    #: ``SQLQ_NO_WAKEUP=1``): the first after a change, doubling while nothing changes up to
    #: ``poll_max_interval`` -- so a busy queue is seen within milliseconds and an idle
    #: waiter costs a fraction of a percent of a core.
    poll_interval = 0.005
    poll_max_interval = 0.05
    #: Longest block on the wake-up socket between two ``PRAGMA data_version`` checks: bounds
    #: how late a commit by a writer that could not notify (another program) is seen.
    recheck_interval = 0.5

    def _start_thread(self, local: threading.local, conn: Any) -> None:
        super()._start_thread(local, conn)
        # Baseline of wait_for_change(): commits by others from now on count as changes.
        local.seen_version = self._data_version(conn)

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

    def _poll_for_change(self, conn: Any, local: threading.local, timeout: float) -> bool:
        """Fallback without notifications: poll ``PRAGMA data_version``."""
        deadline = time.monotonic() + timeout
        start = local.seen_version
        interval = getattr(local, 'poll_interval', self.poll_interval)
        while True:
            remaining = deadline - time.monotonic()
            if remaining > 0:
                time.sleep(min(interval, remaining))
            version = self._data_version(conn)
            if version != start:
                local.seen_version = version
                local.last_wake = 'poll'
                local.poll_interval = self.poll_interval
                return True
            interval = local.poll_interval = min(interval * 2, self.poll_max_interval)
            if remaining <= 0:
                local.last_wake = 'timeout'
                return False


def _topic_code(topic: str) -> str:
    try:
        return TOPIC_CODES[topic]
    except (KeyError, TypeError):
        raise ValueError('unknown wait_for_change topic %r (expected one of %s)'
                         % (topic, ', '.join(sorted(TOPICS)))) from None
