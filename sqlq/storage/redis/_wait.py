"""Waiting for changes, and the hand-off of a message to an idle worker: each thread's pub/sub
subscription, :meth:`~sqlq.storage.redis.RedisStorage.wait_for_change` and
:meth:`~sqlq.storage.redis.RedisStorage.worker_session`.

Wake-up
-------
Each script run publishes one message per topic it changed on ``<prefix>:q:{<name>}:wake:<c>``
(``q`` ready messages, ``s`` schedule, ``d`` key/value data, ``x`` any other change).
:meth:`~sqlq.storage.redis.RedisStorage.wait_for_change` keeps, per thread, one pub/sub
connection subscribed to the topics that thread waits for, and blocks in ``poll`` on its
socket: a consumer on another host wakes as soon as the message arrives, and an idle one costs
no CPU. Messages that arrive between two waits stay in the socket and end the next wait at
once. After a lost connection the thread subscribes again and its next wait returns ``True``
at once (wake-ups published meanwhile are lost, so the caller re-checks).

Hand-off
--------
A worker thread also subscribes to a channel of its own, and registers as idle in the claim
script that found nothing. A single enqueue whose script finds nothing ready claims the
message for the newest idle worker and publishes the message itself on that channel, so the
worker starts it without a claim script; ``PUBLISH`` reports how many received it, and if
nobody did (the worker is gone) the same script makes the message ordinarily ready. A message
lost with a dropped connection is taken by the worker's next claim, which finds its
registration used.
"""
from __future__ import annotations

import contextlib
import secrets
import time
from typing import Any, Iterator, Optional, Sequence

from redis import exceptions as _rexc

from sqlq.exceptions import StorageError, StorageUnavailableError
from sqlq.storage._common import TOPIC_CODES, warn_hand_offs_kept
from sqlq.storage.redis._args import claim
from sqlq.storage.redis._base import RedisBase
from sqlq.storage.redis._resp import Subscriber, open_subscriber
from sqlq.storage.types import TOPICS

#: wait_for_change topic -> channel suffix.
#: A wait without a topic listens to every channel.
_ALL_CODES = ('q', 's', 'd', 'x')
#: The code of a worker's own hand-off channel among a waiter's subscriptions.
_HAND_OFF_CODE = 'h'


class _Waiter:
    """One thread's pub/sub subscription for :meth:`RedisStorage.wait_for_change`."""

    def __init__(self, pubsub: Subscriber) -> None:
        self.pubsub = pubsub
        self.channels: dict[bytes, str] = {}  # channel -> code
        self.pending: set[str] = set()
        self.messages: list[bytes] = []  # handed to this worker, not yet accepted


class WaitOps(RedisBase):
    """Wake-ups and the hand-off of :class:`~sqlq.storage.redis.RedisStorage`."""

    #: Seconds to wait for a subscription's confirmation.
    subscribe_timeout = 5.0

    @contextlib.contextmanager
    def worker_session(self) -> Iterator[None]:
        """See :meth:`Storage.worker_session`. While the calling thread finds its queue
        empty it is registered as idle (by the claim script that found nothing) with the name
        of a pub/sub channel of its own; a single :meth:`enqueue` outside a transaction that
        finds nothing ready takes the newest registration, claims its message for that worker
        and publishes it on that channel, in one script run. If nobody is subscribed there
        (the worker is gone), the same run makes the message ordinarily ready. A worker whose
        subscription dropped takes what was handed to it at its next claim; the session's end
        releases what it still holds; dead-owner recovery removes a dead process's
        registrations."""
        local = self._thread()
        if getattr(local, 'serving', None):
            yield
            return
        session = secrets.token_hex(6) + '.'
        local.hand_channel = self._qprefix + 'w:' + session
        local.idle_token = local.done_token = None
        local.handed = []
        local.registrations = 0
        local.serving = session
        try:
            # Subscribed before the first check for work: a message enqueued after that check
            # either wakes this thread or is handed to it.
            self._subscribe(self._waiter(local), ('q', _HAND_OFF_CODE))
        except (StorageError, _rexc.RedisError):
            # The server is unreachable: the worker backs off in its loop, and its first wait
            # subscribes (until then a hand-off finds nobody listening: the task stays ready).
            self._drop_waiter(local)
        try:
            yield
        finally:
            local.serving = local.idle_token = local.done_token = None
            local.handed = []
            try:
                self._one('unidle', self.owner_id, session)
            except StorageError as exc:
                warn_hand_offs_kept(exc)

    def _accept_hand_offs(self, local: Any, waiter: _Waiter) -> None:
        """Turn the messages published to this worker into claims to return."""
        messages, waiter.messages = waiter.messages, []
        owner, session = self.owner_id, getattr(local, 'serving', None)
        for message in messages:
            header, _, data = message.partition(b'\n')
            try:
                msg_id, priority, token = header[1:].decode('ascii').split(' ')
            except ValueError:
                continue
            if token == local.idle_token:
                local.idle_token = None
                local.done_token = token
                local.handed.append(claim(owner, msg_id, data, 1, 0, priority, 0, 1))
            elif session and token.startswith(session):
                # A registration this thread no longer counted on (its claim's reply was
                # lost): the message is still ours unless our claim took it already.
                local.handed.extend(claim(owner, *row)
                                    for row in self._one('takeh', owner, token))

    def _waiter(self, local: Any) -> _Waiter:
        waiter: Optional[_Waiter] = getattr(local, 'waiter', None)
        if waiter is not None and not waiter.pubsub.connected:
            # Its connection was dropped (a wait interrupted mid-message): subscribe again.
            self._drop_waiter(local)
            waiter = None
        if waiter is None:
            waiter = local.waiter = _Waiter(open_subscriber(self._pool))
            with self._lock:
                self._subscribers.append(waiter.pubsub)
        return waiter

    def _drop_waiter(self, local: Any) -> None:
        waiter: Optional[_Waiter] = getattr(local, 'waiter', None)
        local.waiter = None
        if waiter is not None:
            with self._lock:
                if waiter.pubsub in self._subscribers:
                    self._subscribers.remove(waiter.pubsub)
            with contextlib.suppress(Exception):
                waiter.pubsub.close()

    def _subscribe(self, waiter: _Waiter, codes: Sequence[str]) -> None:
        channels = {(self._qprefix + 'wake:' + c).encode(): c for c in codes
                    if c != _HAND_OFF_CODE}
        hand_channel = getattr(self._local, 'hand_channel', None)
        if _HAND_OFF_CODE in codes and hand_channel:
            channels[hand_channel.encode()] = _HAND_OFF_CODE
        waiter.pubsub.subscribe(list(channels))
        waiter.channels.update(channels)
        # Only once the server confirmed does a later publish reach this socket.
        pending = set(channels)
        deadline = time.monotonic() + self.subscribe_timeout
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StorageUnavailableError('Redis server %s did not confirm a subscription '
                                              'within %gs' % (self.address,
                                                              self.subscribe_timeout))
            self._note(waiter, waiter.pubsub.get_message(remaining), pending)

    @staticmethod
    def _note(waiter: _Waiter, frame: Optional[list[Any]],
              confirming: Optional[set[bytes]] = None) -> Optional[str]:
        """Record a pub/sub frame; the topic code of a wake-up, else None."""
        if not frame or len(frame) < 3:
            return None
        kind = frame[0]
        if kind == b'subscribe':
            if confirming is not None:
                confirming.discard(frame[1])
            return None
        if kind != b'message':
            return None
        code = waiter.channels.get(frame[1])
        if code == _HAND_OFF_CODE:  # a message handed to this worker: wakes it as 'q' does
            waiter.messages.append(frame[2])
            code = 'q'
        if code is not None:
            waiter.pending.add(code)
        return code

    def wait_for_change(self, timeout: float, topic: Optional[str] = None) -> bool:
        """Block on this thread's pub/sub connection; see the module documentation.

        The first call of a thread for a topic (and the first after a lost connection)
        subscribes and returns ``True`` at once. ``topic=None`` waits for any change made
        after the call started.
        """
        if topic is not None and topic not in TOPIC_CODES:
            raise ValueError('unknown wait_for_change topic %r (expected one of %s)'
                             % (topic, ', '.join(sorted(TOPICS))))
        local = self._thread()
        if getattr(local, 'tx', None) is not None:
            raise StorageError('wait_for_change() cannot be called inside transaction()')
        codes = _ALL_CODES if topic is None else (TOPIC_CODES[topic],)
        deadline = time.monotonic() + max(float(timeout), 0.0)
        try:
            waiter = self._waiter(local)
            subscribed = waiter.channels.values()
            missing = [c for c in codes if c not in subscribed]
            if 'q' in codes and getattr(local, 'serving', None) \
                    and _HAND_OFF_CODE not in subscribed:
                missing.append(_HAND_OFF_CODE)  # lost with a dropped connection
            if missing:
                self._subscribe(waiter, missing)
                if topic is not None:
                    return True  # tracking starts now: the caller re-checks
            if topic is None:  # any change made from now on
                waiter.pending.clear()
            while True:
                hit = waiter.pending.intersection(codes)
                if hit:
                    # Changes already delivered are covered by this wake-up too.
                    while self._note(waiter, waiter.pubsub.get_message(0.0)) is not None:
                        pass
                    waiter.pending.difference_update(hit)
                    if waiter.messages:
                        self._accept_hand_offs(local, waiter)
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._note(waiter, waiter.pubsub.get_message(remaining))
        except _rexc.RedisError as exc:
            self._drop_waiter(local)  # subscribe again next time: wake-ups may have been lost
            raise self._error(exc, 'waiting for a change') from exc
