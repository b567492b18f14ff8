"""The state of a :class:`~sqlq.storage.memory.MemoryStorage`: its messages, schedule, keys,
dead letters and owners, with the indexes of message keys (copied whole to snapshot a
transaction)."""
from __future__ import annotations

import heapq
from typing import Any, Optional

from .types import DeadLetter, Location, OwnerInfo, Receipt

__all__ = ['_Message', '_State', '_unindex']


class _Message:
    __slots__ = ('id', 'priority', 'data', 'owner', 'claimed_at', 'attempts', 'recoveries',
                 'enqueued_at', 'key', 'started', 'deaths')

    def __init__(self, id: int, priority: int, data: bytes, enqueued_at: float,
                 key: Optional[str] = None) -> None:
        self.id = id
        self.key = key
        self.priority = priority
        self.data = data
        self.owner: Optional[str] = None
        self.claimed_at: Optional[float] = None
        self.attempts = 0
        self.recoveries = 0
        self.enqueued_at = enqueued_at
        self.started = False  # the claim is recorded as started (Storage.mark_started)
        self.deaths = 0


class _State:
    """Everything a MemoryStorage holds; copied whole to snapshot a transaction."""

    def __init__(self) -> None:
        self.seq = 0
        self.messages: dict[int, _Message] = {}
        self.ready: list[tuple[int, int]] = []            # heap of (-priority, id)
        self.schedule: list[tuple[float, int, bytes]] = []  # heap of (ts, seq, data)
        # Keys (Tracking): of messages, scheduled messages (by seq) and dead letters, indexed.
        self.keys: dict[str, set[int]] = {}
        self.sched_keys: dict[int, str] = {}
        self.sched_index: dict[str, set[int]] = {}
        self.dead_index: dict[str, set[int]] = {}
        self.kv: dict[str, tuple[bytes, bool, Optional[float]]] = {}  # value, is_result, expires
        self.dead: dict[int, DeadLetter] = {}             # insertion (= id) ordered
        self.owners: dict[str, OwnerInfo] = {}

    def next_id(self) -> int:
        self.seq += 1
        return self.seq

    def add_message(self, msg: _Message) -> None:
        self.messages[msg.id] = msg
        heapq.heappush(self.ready, (-msg.priority, msg.id))
        if msg.key is not None:
            self.keys.setdefault(msg.key, set()).add(msg.id)

    def claimed(self, receipt: Any) -> Optional[_Message]:
        """The message ``receipt`` still holds a claim on, or None."""
        msg_id, owner, attempts = Receipt.of(receipt)
        msg = self.messages.get(msg_id)
        if msg is None or msg.owner is None or msg.owner != owner or msg.attempts != attempts:
            return None
        return msg

    def requeue(self, msg: _Message) -> None:
        """Make a claimed message ready again."""
        msg.owner = msg.claimed_at = None
        msg.started = False
        heapq.heappush(self.ready, (-msg.priority, msg.id))

    def locate(self, key: str) -> list[Location]:
        """Where the messages carrying ``key`` are: claimed, ready, scheduled, dead."""
        found = []
        for msg_id in sorted(self.keys.get(key, ())):
            m = self.messages[msg_id]
            found.append(Location('claimed' if m.owner else 'ready', m.id, m.data,
                                  m.enqueued_at, None, m.owner, m.claimed_at, m.attempts,
                                  m.recoveries, m.priority))
        found.sort(key=lambda loc: loc.state != 'claimed')
        seqs = self.sched_index.get(key, ())
        found += [Location('scheduled', seq, data, eta=ts)
                  for ts, seq, data in sorted(e for e in self.schedule if e[1] in seqs)]
        for dead_id in sorted(self.dead_index.get(key, ())):
            d = self.dead[dead_id]
            found.append(Location('dead', d.id, d.data, d.enqueued_at, attempts=d.attempts,
                                  reason=d.reason, failed_at=d.failed_at))
        return found

    def drop_message(self, msg: _Message) -> None:
        del self.messages[msg.id]
        _unindex(self.keys, msg.key, msg.id)

    def add_dead(self, letter: DeadLetter) -> None:
        self.dead[letter.id] = letter
        if letter.key is not None:
            self.dead_index.setdefault(letter.key, set()).add(letter.id)

    def drop_dead(self, dead_id: int) -> DeadLetter:
        letter = self.dead.pop(dead_id)
        _unindex(self.dead_index, letter.key, dead_id)
        return letter


def _unindex(index: dict[str, set[int]], key: Optional[str], item: int) -> None:
    if key is not None:
        ids = index.get(key)
        if ids is not None:
            ids.discard(item)
            if not ids:
                del index[key]
