"""In-process storage: each instance is an independent queue held in memory (like MemoryHuey).

Meant for tests and for running tasks in one process. Thread-safe: one re-entrant lock guards
all state; :meth:`MemoryStorage.transaction` holds it for the whole block, so other threads see
the block's effects all at once or not at all.
"""
from __future__ import annotations

import contextlib
import copy
import heapq
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, Tuple

from sqlq.exceptions import StorageError
from sqlq.storage._common import as_bytes, parse_counter
from sqlq.storage._common import limit as _limit  # a contract parameter is named limit
from sqlq.storage._memory_history import MemoryHistory
from sqlq.storage._memory_state import _Message, _State, _unindex
from sqlq.storage._owners import parse_owner_id
from sqlq.storage.base import Storage
from sqlq.storage.types import (
    EMPTY,
    TOPICS,
    Claim,
    ClaimedItem,
    DeadLetter,
    Finished,
    HistoryEntry,
    Location,
    OwnerInfo,
    RunStats,
    new_receipt,
)

__all__ = ['MemoryStorage']


class MemoryStorage(Storage):
    """Byte-level storage held in this process's memory; see :class:`~sqlq.storage.base.Storage`."""

    def __init__(self, name: str = 'sqlq', *, clock: Callable[[], float] = time.time,
                 flag_prefix: Optional[str] = None, **options: Any) -> None:
        super().__init__(name, clock=clock, flag_prefix=flag_prefix)
        if options:
            raise TypeError('unexpected MemoryStorage options: %s' % ', '.join(sorted(options)))
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._state = _State()
        self._version = 0
        #: Per wait_for_change topic: bumped by every change of that topic.
        self._topic_versions = dict.fromkeys(TOPICS, 0)
        self._seen = threading.local()  # per thread: {topic: version seen by its last wait}
        self._tx_depth = 0
        self._closed = False
        self._history = MemoryHistory()  # outside _state: see MemoryHistory

    # ------------------------------------------------------------------ helpers

    @contextlib.contextmanager
    def _locked(self, write: bool = False, topics: Tuple[str, ...] = ()) -> Iterator[_State]:
        with self._lock:
            if self._closed:
                raise StorageError('storage %r is closed' % self.name)
            yield self._state
            if write:
                self._changed(*topics)

    def _changed(self, *topics: str) -> None:
        """Record a change (of ``topics``) and wake the waiters; call with the lock held."""
        self._version += 1
        for topic in topics:
            self._topic_versions[topic] += 1
        self._cond.notify_all()

    def _live(self, st: _State, key: str) -> Optional[tuple[bytes, bool, Optional[float]]]:
        entry = st.kv.get(key)
        if entry is None:
            return None
        expires = entry[2]
        if expires is not None and expires <= self._clock():
            del st.kv[key]  # lazy expiry
            return None
        return entry

    def _expires(self, ttl: Optional[float]) -> Optional[float]:
        return None if ttl is None else self._clock() + ttl


    # ------------------------------------------------------------------ ready queue

    tracks_tasks = True

    def enqueue(self, data: bytes, priority: int = 0, key: Optional[str] = None) -> None:
        self.enqueue_many([(data, priority)], None if key is None else (key,))

    def enqueue_many(self, items: Iterable[tuple[bytes, int]],
                     keys: Optional[Sequence[Optional[str]]] = None) -> int:
        prepared = [(as_bytes(data), int(priority)) for data, priority in items]
        now = self._clock()
        with self._locked(write=bool(prepared), topics=('queue',)) as st:
            for index, (data, priority) in enumerate(prepared):
                st.add_message(_Message(st.next_id(), priority, data, now,
                                        None if keys is None else keys[index]))
        return len(prepared)

    def dequeue(self) -> Optional[Claim]:
        claims = self.dequeue_many(1)
        return claims[0] if claims else None

    def dequeue_many(self, limit: int) -> list[Claim]:
        owner = self.owner_id
        flag_prefix = self.flag_prefix
        claims: list[Claim] = []
        started = limit == 1  # a claim of one is recorded as started: it runs at once
        with self._locked() as st:
            now = self._clock()
            flagged = None if flag_prefix is None else \
                any(key.startswith(flag_prefix) for key in st.kv)
            while st.ready and len(claims) < limit:
                _, msg_id = heapq.heappop(st.ready)
                msg = st.messages[msg_id]
                msg.owner = owner
                msg.claimed_at = now
                msg.attempts += 1
                msg.started = started
                claims.append(Claim(msg.data, new_receipt((msg.id, owner, msg.attempts)),
                                    msg.attempts, msg.recoveries, msg.priority, msg.id,
                                    flagged, started, msg.deaths))
            if claims:
                self._changed()
        return claims

    def release_unstarted(self, receipts: Iterable[Any]) -> int:
        released = 0
        with self._locked() as st:
            for receipt in receipts:
                msg = st.claimed(receipt)
                if msg is not None:
                    st.requeue(msg)
                    released += 1
            if released:
                self._changed('queue')
        return released

    def mark_started(self, receipt: Any) -> bool:
        with self._locked() as st:
            msg = st.claimed(receipt)
            if msg is None:
                return False
            msg.started = True
            return True

    def ack(self, receipt: Any) -> bool:
        with self._locked() as st:
            msg = st.claimed(receipt)
            if msg is None:
                return False
            st.drop_message(msg)
            self._changed()
            return True

    def release(self, receipt: Any) -> bool:
        with self._locked() as st:
            msg = st.claimed(receipt)
            if msg is None:
                return False
            st.requeue(msg)
            self._changed('queue')
            return True

    def bury(self, receipt: Any, reason: str) -> bool:
        with self._locked() as st:
            msg = st.claimed(receipt)
            if msg is None:
                return False
            st.drop_message(msg)
            dead_id = st.next_id()
            st.add_dead(DeadLetter(dead_id, msg.data, str(reason), self._clock(), msg.attempts,
                                   msg.enqueued_at, msg.key))
            self._changed()
            return True

    def queue_size(self) -> int:
        with self._locked() as st:
            return len(st.ready)

    def claimed_size(self) -> int:
        with self._locked() as st:
            return len(st.messages) - len(st.ready)

    def enqueued_items(self, limit: Optional[int] = None) -> list[bytes]:
        with self._locked() as st:
            order = sorted(st.ready) if limit is None else heapq.nsmallest(limit, st.ready)
            return [st.messages[msg_id].data for _, msg_id in order]

    def claimed_items(self) -> list[ClaimedItem]:
        with self._locked() as st:
            claimed = [m for m in st.messages.values() if m.owner is not None]
            claimed.sort(key=lambda m: (m.claimed_at, m.id))
            return [ClaimedItem(m.id, m.data, m.owner, m.claimed_at,  # type: ignore[arg-type]
                                m.attempts, m.recoveries) for m in claimed]

    def flush_queue(self) -> None:
        with self._locked(write=True) as st:
            st.messages.clear()
            st.ready.clear()
            st.keys.clear()

    # ------------------------------------------------------------------ schedule

    def add_to_schedule(self, data: bytes, timestamp: float, key: Optional[str] = None) -> None:
        data = as_bytes(data)
        with self._locked(write=True, topics=('schedule',)) as st:
            seq = st.next_id()
            heapq.heappush(st.schedule, (float(timestamp), seq, data))
            if key is not None:
                st.sched_keys[seq] = key
                st.sched_index.setdefault(key, set()).add(seq)

    def read_schedule(self, timestamp: float, limit: Optional[int] = None) -> list[bytes]:
        most = _limit(limit)
        with self._locked() as st:
            due: list[bytes] = []
            while st.schedule and st.schedule[0][0] <= timestamp and len(due) != most:
                _, seq, data = heapq.heappop(st.schedule)
                due.append(data)
                _unindex(st.sched_index, st.sched_keys.pop(seq, None), seq)
            if due:
                self._changed()
            return due

    def next_scheduled_time(self) -> Optional[float]:
        with self._locked() as st:
            return st.schedule[0][0] if st.schedule else None

    def scheduled_items(self, limit: Optional[int] = None) -> list[bytes]:
        with self._locked() as st:
            order = sorted(st.schedule) if limit is None else heapq.nsmallest(limit, st.schedule)
            return [item[2] for item in order]

    def schedule_size(self) -> int:
        with self._locked() as st:
            return len(st.schedule)

    def flush_schedule(self) -> None:
        with self._locked(write=True) as st:
            st.schedule.clear()
            st.sched_keys.clear()
            st.sched_index.clear()

    # ------------------------------------------------------------------ key/value

    def put_data(self, key: str, value: bytes, is_result: bool = False,
                 ttl: Optional[float] = None) -> None:
        value = as_bytes(value)
        with self._locked(write=True, topics=('data',)) as st:
            st.kv[key] = (value, bool(is_result), self._expires(ttl))

    def peek_data(self, key: str) -> Any:
        with self._locked() as st:
            entry = self._live(st, key)
            return EMPTY if entry is None else entry[0]

    def pop_data(self, key: str) -> Any:
        with self._locked() as st:
            entry = self._live(st, key)
            if entry is None:
                return EMPTY
            del st.kv[key]
            self._changed('data')
            return entry[0]

    def delete_data(self, key: str) -> bool:
        with self._locked() as st:
            if self._live(st, key) is None:
                return False
            del st.kv[key]
            self._changed('data')
            return True

    def has_data_for_key(self, key: str) -> bool:
        with self._locked() as st:
            return self._live(st, key) is not None

    def put_if_empty(self, key: str, value: bytes, ttl: Optional[float] = None) -> bool:
        value = as_bytes(value)
        with self._locked() as st:
            if self._live(st, key) is not None:
                return False
            st.kv[key] = (value, False, self._expires(ttl))
            self._changed('data')
            return True

    def incr(self, key: str, amount: int = 1, ttl: Optional[float] = None) -> int:
        with self._locked(write=True, topics=('data',)) as st:
            entry = self._live(st, key)
            if entry is None:
                value, is_result, expires = int(amount), False, self._expires(ttl)
            else:
                value = parse_counter(key, entry[0]) + int(amount)
                is_result, expires = entry[1], entry[2]
            st.kv[key] = (b'%d' % value, is_result, expires)
            return value

    def delete_prefix(self, prefix: str) -> int:
        with self._locked(write=True, topics=('data',)) as st:
            keys = [k for k in st.kv if k.startswith(prefix)]
            live = sum(1 for k in keys if self._live(st, k) is not None)
            for k in keys:
                st.kv.pop(k, None)
            return live

    def result_store_size(self) -> int:
        return len(self.result_items())

    def result_items(self) -> dict[str, bytes]:
        with self._locked() as st:
            return {k: e[0] for k in list(st.kv)
                    if (e := self._live(st, k)) is not None and e[1]}

    def flush_results(self) -> None:
        with self._locked(write=True, topics=('data',)) as st:
            for k in [k for k, e in st.kv.items() if e[1]]:
                del st.kv[k]

    # ------------------------------------------------------------------ dead letters

    def add_dead_letter(self, data: bytes, reason: str, attempts: int = 0,
                        enqueued_at: Optional[float] = None, key: Optional[str] = None) -> int:
        data = as_bytes(data)
        with self._locked(write=True) as st:
            dead_id = st.next_id()
            st.add_dead(DeadLetter(dead_id, data, str(reason), self._clock(), int(attempts),
                                   None if enqueued_at is None else float(enqueued_at), key))
            return dead_id

    def dead_letter(self, id: int) -> Optional[DeadLetter]:
        with self._locked() as st:
            return st.dead.get(int(id))

    def dead_letters(self, limit: Optional[int] = None) -> list[DeadLetter]:
        with self._locked() as st:
            letters = list(st.dead.values())
            return letters if limit is None else letters[:max(limit, 0)]

    def dead_letter_count(self) -> int:
        with self._locked() as st:
            return len(st.dead)

    def _select_dead(self, st: _State, ids: Optional[Iterable[int]]) -> list[int]:
        if ids is None:
            return list(st.dead)
        return sorted({i for i in ids if i in st.dead})

    def requeue_dead_letters(self, ids: Optional[Iterable[int]] = None,
                             priority: int = 0) -> int:
        now = self._clock()
        with self._locked() as st:
            chosen = self._select_dead(st, ids)
            for dead_id in chosen:
                letter = st.drop_dead(dead_id)
                st.add_message(_Message(st.next_id(), int(priority), letter.data, now,
                                        letter.key))
            if chosen:
                self._changed('queue')
            return len(chosen)

    def purge_dead_letters(self, ids: Optional[Iterable[int]] = None) -> int:
        with self._locked(write=True) as st:
            chosen = self._select_dead(st, ids)
            for dead_id in chosen:
                st.drop_dead(dead_id)
            return len(chosen)

    # ------------------------------------------------------------------ owners

    def heartbeat(self, ttl_hint: float = 10.0) -> None:
        owner = self.owner_id
        now = self._clock()
        with self._locked(write=True) as st:
            known = st.owners.get(owner)
            if known is None:
                host, pid = parse_owner_id(owner)
                st.owners[owner] = OwnerInfo(owner, host, pid, now, now)
            else:
                st.owners[owner] = known._replace(heartbeat_at=now)

    def owners(self) -> list[OwnerInfo]:
        with self._locked() as st:
            found = dict(st.owners)
            for msg in st.messages.values():
                if msg.owner is not None and msg.owner not in found:
                    host, pid = parse_owner_id(msg.owner)
                    found[msg.owner] = OwnerInfo(msg.owner, host, pid, None, None)
            return [found[k] for k in sorted(found)]

    def claim_owners(self) -> dict[str, int]:
        with self._locked() as st:
            counts: dict[str, int] = {}
            for msg in st.messages.values():
                if msg.owner is not None:
                    counts[msg.owner] = counts.get(msg.owner, 0) + 1
            return counts

    def release_owner(self, owner_id: str) -> int:
        with self._locked() as st:
            released = 0
            for msg in st.messages.values():
                if msg.owner is not None and msg.owner == owner_id:
                    msg.recoveries += 1
                    msg.deaths += msg.started
                    st.requeue(msg)
                    released += 1
            existed = st.owners.pop(owner_id, None) is not None
            if released:
                self._changed('queue')
            elif existed:
                self._changed()
            return released

    def forget_owner(self, owner_id: str) -> bool:
        with self._locked() as st:
            if owner_id not in st.owners or any(m.owner == owner_id
                                                for m in st.messages.values()):
                return False
            del st.owners[owner_id]
            self._changed()
            return True

    # ------------------------------------------------------------------ tracking

    def locate(self, key: str) -> list[Location]:
        with self._locked() as st:
            return st.locate(key)

    def _finish_claim(self, st: _State, receipt: Any, finished: Optional[Finished],
                      reason: Optional[str] = None) -> Optional[_Message]:
        msg = st.claimed(receipt)
        if msg is None:
            return None
        st.drop_message(msg)
        if reason is not None:
            dead_id = st.next_id()
            st.add_dead(DeadLetter(dead_id, msg.data, str(reason), self._clock(), msg.attempts,
                                   msg.enqueued_at, msg.key))
        if finished is not None:
            self._history.add(finished, msg.enqueued_at, msg.claimed_at, msg.attempts,
                              msg.owner)
        return msg

    def finish(self, receipt: Any, finished: Optional[Finished] = None,
               reason: Optional[str] = None) -> bool:
        with self._locked() as st:
            held = self._finish_claim(st, receipt, finished, reason) is not None
            if held:
                self._changed()
            return held

    def complete_many(self, items: Sequence[tuple[Any, Optional[str], Optional[bytes],
                                                  Optional[float]]],
                      history: Optional[Sequence[Optional[Finished]]] = None) -> list[bool]:
        with self.transaction(), self._locked() as st:
            held = []
            for index, (receipt, key, value, ttl) in enumerate(items):
                ok = self._finish_claim(st, receipt, None if history is None
                                        else history[index]) is not None
                if ok and key is not None and value is not None:
                    st.kv[key] = (as_bytes(value), True, self._expires(ttl))
                held.append(ok)
            if any(held):
                self._changed('data')
            return held

    def record_finished(self, entries: Sequence[Finished]) -> None:
        with self._locked():
            for entry in entries:
                self._history.add(entry)

    def history(self, limit: Optional[int] = 50, before: Optional[int] = None,
                key: Optional[str] = None, name: Optional[str] = None,
                outcome: Optional[str] = None) -> list[HistoryEntry]:
        with self._locked():
            return self._history.listing(limit, before, key, name, outcome)

    def history_stats(self, since: Optional[float] = None,
                      per_minute: bool = False) -> list[RunStats]:
        with self._locked():
            return self._history.stats(since, per_minute)

    def prune_history(self, before: Optional[float] = None, keep: Optional[int] = None,
                      stats_before: Optional[float] = None) -> int:
        self._refuse_in_transaction('prune_history')
        with self._locked():
            return self._history.prune(before, keep, stats_before)

    # ------------------------------------------------------------------ upkeep

    def purge_expired(self) -> int:
        with self._locked() as st:
            now = self._clock()
            expired = [k for k, e in st.kv.items() if e[2] is not None and e[2] <= now]
            for k in expired:
                del st.kv[k]
            if expired:
                self._changed('data')
            return len(expired)

    def _refuse_in_transaction(self, what: str) -> None:
        with self._locked():
            if self._tx_depth:  # only the transacting thread can hold the lock here
                raise StorageError('%s() cannot be called inside transaction()' % what)

    def maintenance(self) -> dict[str, Any]:
        self._refuse_in_transaction('maintenance')
        return {'purged': self.purge_expired(), 'vacuumed_pages': 0, 'checkpoint': None}

    def vacuum(self) -> None:
        self._refuse_in_transaction('vacuum')  # nothing to compact

    def stats(self) -> dict[str, Any]:
        with self._locked() as st:
            now = self._clock()
            live = [e for e in st.kv.values() if e[2] is None or e[2] > now]
            return {
                'ready': len(st.ready),
                'claimed': len(st.messages) - len(st.ready),
                'scheduled': len(st.schedule),
                'results': sum(1 for e in live if e[1]),
                'kv_keys': len(live),
                'expired_keys': len(st.kv) - len(live),
                'dead_letters': len(st.dead),
                'db_size': 0, 'wal_size': 0, 'page_size': 0, 'page_count': 0,
                'freelist_count': 0,
            }

    # ------------------------------------------------------------------ whole storage

    def flush_all(self) -> None:
        with self._locked(write=True, topics=TOPICS) as st:
            seq = st.seq
            self._state = _State()
            self._state.seq = seq  # ids are never reused: stale receipts stay stale
            self._state.owners = st.owners  # owners are processes, not data of the queue
            self._history.clear()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self._locked():
            snapshot = copy.deepcopy(self._state)  # each level restores its own entry state
            mark = self._history.mark()
            self._tx_depth += 1
            try:
                yield None
            except BaseException:
                self._state = snapshot
                self._history.rollback(mark)
                self._changed(*TOPICS)
                raise
            finally:
                self._tx_depth -= 1

    def wait_for_change(self, timeout: float, topic: Optional[str] = None) -> bool:
        """Without a topic: wait for any change made after this call started. With a topic:
        ``True`` at once on a thread's first call for it, or if that topic changed since the
        thread's previous call for it returned (see :meth:`Storage.wait_for_change`)."""
        if topic is not None and topic not in self._topic_versions:
            raise ValueError('unknown wait_for_change topic %r (expected one of %s)'
                             % (topic, ', '.join(sorted(TOPICS))))
        with self._locked():
            if self._tx_depth:  # only the transacting thread can hold the lock here
                raise StorageError('wait_for_change() cannot be called inside transaction()')
            if topic is None:
                start = self._version
                return self._cond.wait_for(lambda: self._version != start or self._closed,
                                           max(timeout, 0.0)) and not self._closed
            versions = self._topic_versions
            seen = self._seen.__dict__
            if topic not in seen:
                seen[topic] = versions[topic]
                return True
            changed = self._cond.wait_for(
                lambda: versions[topic] != seen[topic] or self._closed, max(timeout, 0.0))
            seen[topic] = versions[topic]
            return changed and not self._closed

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._cond.notify_all()
