"""The ready queue and its claims as script operations: enqueue, dequeue (with the idle
registration of the hand-off, see :mod:`sqlq.storage.redis._wait`), settling claims, and
listings."""
from __future__ import annotations

import secrets
from typing import Any, Iterable, Optional, Sequence

from sqlq.storage._common import as_bytes
from sqlq.storage._common import limit as _limit  # a contract parameter is named limit
from sqlq.storage.redis._args import NO_ARG, claim, run_args
from sqlq.storage.redis._base import RedisBase
from sqlq.storage.redis._transaction import _Tx
from sqlq.storage.types import Claim, ClaimedItem, Finished, Receipt

#: Largest message handed to an idle worker (bigger ones wait for an ordinary claim).
HAND_OFF_MAX = 1 << 20


class QueueOps(RedisBase):
    """The ready queue and claims of :class:`~sqlq.storage.redis.RedisStorage`."""

    tracks_tasks = True

    def enqueue(self, data: bytes, priority: int = 0, key: Optional[str] = None) -> None:
        local = self._thread()
        data = as_bytes(data)
        if getattr(local, 'tx', None) is not None or len(data) > HAND_OFF_MAX:
            self.enqueue_many([(data, priority)], None if key is None else (key,))
            return
        # Handed to an idle worker if nothing is ready (see worker_session).
        priority = int(priority)
        self._one('enq1', data, priority, -priority, getattr(local, 'idle_token', None) or
                  NO_ARG, key or NO_ARG)

    def enqueue_many(self, items: Iterable[tuple[bytes, int]],
                     keys: Optional[Sequence[Optional[str]]] = None) -> int:
        args: list[Any] = []
        for index, (data, priority) in enumerate(items):
            data, priority = as_bytes(data), int(priority)
            args.extend((data, priority, -priority,
                         NO_ARG if keys is None else keys[index] or NO_ARG))
        if not args:
            return 0
        n = len(args) // 4
        self._write(self._tx(), 'enq', n, *args)
        return n

    def dequeue(self) -> Optional[Claim]:
        claims = self.dequeue_many(1)
        return claims[0] if claims else None

    def dequeue_many(self, limit: int) -> list[Claim]:
        """Claim up to ``limit`` ready messages in one script run (``flagged`` unchecked)."""
        owner = self.owner_id
        local = self._thread()
        tx = getattr(local, 'tx', None)
        if tx is not None:
            claims: list[Claim] = []
            while len(claims) < limit:
                found = self._dequeue_in_tx(tx, owner, limit == 1)
                if found is None:
                    break
                claims.append(found)
            return claims
        if limit < 1:
            return []
        # A request id survives a failed call: if its reply was lost, the retry gets the same
        # claims back instead of leaving them held by this (live) owner forever.
        if local.__dict__.get('handed'):  # published to this worker: already claimed
            handed: list[Claim] = local.handed
            local.handed = []
            return handed
        request = getattr(local, 'dequeue_request', None) or secrets.token_hex(8)
        local.dequeue_request = request
        # In a worker session (see worker_session): register as idle if nothing is found.
        session = getattr(local, 'serving', None)
        fresh = channel = NO_ARG
        if session:
            local.registrations += 1
            fresh, channel = '%s%d' % (session, local.registrations), local.hand_channel
        rows = self._one('deq', owner, request, NO_ARG, int(limit),
                         getattr(local, 'idle_token', None) or NO_ARG, fresh, channel,
                         getattr(local, 'done_token', None) or NO_ARG)
        local.dequeue_request = local.done_token = None
        if rows and rows[-1][0] == b'idle':
            local.idle_token = rows[-1][1].decode()
            return []
        local.idle_token = None
        return [claim(owner, *row) for row in rows]

    def _dequeue_in_tx(self, tx: _Tx, owner: str, started: bool) -> Optional[Claim]:
        for row in self._read('head', len(tx.claims) + 1):
            msg_id = int(row[0])
            if msg_id in tx.claims:
                continue
            found = claim(owner, msg_id, row[1], int(row[2]) + 1, row[3], row[4], row[5],
                          started)
            tx.guard('R', msg_id)
            tx.claims[msg_id] = (owner, found.attempts, True)
            self._write(tx, 'deq', owner, NO_ARG, msg_id, int(started), NO_ARG, NO_ARG,
                        NO_ARG, NO_ARG)
            return found
        return None

    def release_unstarted(self, receipts: Iterable[Any]) -> int:
        """Release several claims that never started, in one run (attempts still count: they
        fence receipts)."""
        unpacked = [Receipt.of(receipt) for receipt in receipts]
        if self._tx() is not None:
            return sum(self._settle('unstart1', receipt) for receipt in unpacked)
        if not unpacked:
            return 0
        args = [value for receipt in unpacked for value in receipt]
        return int(self._one('unstart', len(unpacked), *args)[0])

    def mark_started(self, receipt: Any) -> bool:
        return self._settle('start', receipt, settles=False)

    def _settle(self, op: str, receipt: Any, *extra: Any, settles: bool = True) -> bool:
        """Apply ``op`` to a held claim (fenced by its receipt); ``settles``: the claim is
        gone after it."""
        msg_id, owner, attempts = Receipt.of(receipt)
        tx = self._tx()
        if tx is None:
            return bool(self._one(op, msg_id, owner, attempts, *extra)[0])
        known = tx.claims.get(msg_id)
        if known is not None:
            if known != (owner, attempts, True):
                return False
        else:
            state = self._read('claim', msg_id)
            if not state or state[0].decode() != owner or int(state[1]) != attempts:
                return False  # stale for good: fencing tokens only move forward
            tx.guard('C', msg_id, owner, attempts)
        tx.claims[msg_id] = (owner, attempts, not settles)
        self._write(tx, op, msg_id, owner, attempts, *extra)
        return True

    def ack(self, receipt: Any) -> bool:
        return self._settle('ack', receipt)

    def complete_many(self, items: Sequence[tuple[Any, Optional[str], Optional[bytes],
                                                  Optional[float]]],
                      history: Optional[Sequence[Optional[Finished]]] = None) -> list[bool]:
        """Ack the claims, store their results and record their runs in one call (inside a
        transaction: its buffered, guarded path)."""
        if self._tx() is not None:
            held = []
            for index, (receipt, key, value, ttl) in enumerate(items):
                ok = self.finish(receipt, None if history is None else history[index])
                if ok and key is not None and value is not None:
                    self.put_data(key, value, is_result=True, ttl=ttl)
                held.append(ok)
            return held
        if not items:
            return []
        args: list[Any] = []
        for index, (receipt, key, value, ttl) in enumerate(items):
            args.extend(Receipt.of(receipt))
            args.extend((NO_ARG, b'', NO_ARG) if key is None else
                        (key, as_bytes(value if value is not None else b''), self._expires(ttl)))
            args.extend(run_args(None if history is None else history[index]))
        return [bool(int(held)) for held in self._one('complete', len(items), *args)]

    def release(self, receipt: Any) -> bool:
        return self._settle('rel', receipt)

    def bury(self, receipt: Any, reason: str) -> bool:
        return self._settle('bury', receipt, str(reason))

    def queue_size(self) -> int:
        return int(self._counts()[0])

    def claimed_size(self) -> int:
        return int(self._counts()[1])

    def enqueued_items(self, limit: Optional[int] = None) -> list[bytes]:
        return list(self._read('items', _limit(limit)))

    def claimed_items(self) -> list[ClaimedItem]:
        return [ClaimedItem(int(i), d, o.decode(), float(c), int(a), int(r))
                for i, d, o, c, a, r in self._read('claimed')]

    def flush_queue(self) -> None:
        self._write(self._tx(), 'flushq')

