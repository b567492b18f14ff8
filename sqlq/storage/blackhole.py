"""A storage that keeps nothing (huey's ``BlackHoleStorage``).

Every write is accepted and discarded; every read finds nothing: the queue is always empty,
no result is ever stored, a lock is always free (:meth:`BlackHoleStorage.put_if_empty` succeeds
each time, as huey's does) and a counter never gets past its first increment. Useful to check
that code never touches the regular storage -- a queue in immediate mode runs on its own
in-memory storage, so ``Queue(storage_class=BlackHoleStorage, immediate=True)`` behaves like
any immediate queue -- and to disable a queue without changing its callers.
"""
from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, Callable, ContextManager, Iterable, Optional, Sequence

from sqlq.storage.base import Storage
from sqlq.storage.types import EMPTY, TOPICS, Claim, ClaimedItem, DeadLetter, Finished, OwnerInfo

__all__ = ['BlackHoleStorage']


class BlackHoleStorage(Storage):
    """Accepts every write and keeps nothing; see the module docstring.

    Backend options (``filename=``, ``url=``...) are accepted and ignored, so that it can
    replace any backend through ``storage_class=``.
    """

    batch_in_transaction = False

    def __init__(self, name: str = 'sqlq', *, clock: Callable[[], float] = time.time,
                 flag_prefix: Optional[str] = None, **options: Any) -> None:
        super().__init__(name, clock=clock, flag_prefix=flag_prefix)
        self._closed = threading.Event()

    # ------------------------------------------------------------------ ready queue

    def enqueue(self, data: bytes, priority: int = 0, key: Optional[str] = None) -> None:
        return None

    def enqueue_many(self, items: Iterable[tuple[bytes, int]],
                     keys: Optional[Sequence[Optional[str]]] = None) -> int:
        return sum(1 for _ in items)

    def dequeue(self) -> Optional[Claim]:
        return None

    def dequeue_many(self, limit: int) -> list[Claim]:
        return []

    def release_unstarted(self, receipts: Iterable[Any]) -> int:
        return 0

    def ack(self, receipt: Any) -> bool:
        return False

    def complete_many(self, items: Sequence[tuple[Any, Optional[str], Optional[bytes],
                                                  Optional[float]]],
                      history: Optional[Sequence[Optional[Finished]]] = None) -> list[bool]:
        return [False] * len(items)

    def finish(self, receipt: Any, finished: Optional[Finished] = None,
               reason: Optional[str] = None) -> bool:
        return False  # no claim is ever held (the Tracking default: nothing is kept)

    def mark_started(self, receipt: Any) -> bool:
        return False

    def release(self, receipt: Any) -> bool:
        return False

    def bury(self, receipt: Any, reason: str) -> bool:
        return False

    def queue_size(self) -> int:
        return 0

    def claimed_size(self) -> int:
        return 0

    def enqueued_items(self, limit: Optional[int] = None) -> list[bytes]:
        return []

    def claimed_items(self) -> list[ClaimedItem]:
        return []

    def flush_queue(self) -> None:
        return None

    # ------------------------------------------------------------------ schedule

    def add_to_schedule(self, data: bytes, timestamp: float, key: Optional[str] = None) -> None:
        return None

    def read_schedule(self, timestamp: float, limit: Optional[int] = None) -> list[bytes]:
        return []

    def next_scheduled_time(self) -> Optional[float]:
        return None

    def scheduled_items(self, limit: Optional[int] = None) -> list[bytes]:
        return []

    def schedule_size(self) -> int:
        return 0

    def flush_schedule(self) -> None:
        return None

    # ------------------------------------------------------------------ key/value

    def put_data(self, key: str, value: bytes, is_result: bool = False,
                 ttl: Optional[float] = None) -> None:
        return None

    def peek_data(self, key: str) -> Any:
        return EMPTY

    def peek_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        return {}

    def pop_data(self, key: str) -> Any:
        return EMPTY

    def delete_data(self, key: str) -> bool:
        return False

    def has_data_for_key(self, key: str) -> bool:
        return False

    def put_if_empty(self, key: str, value: bytes, ttl: Optional[float] = None) -> bool:
        return True  # nothing is ever there

    def incr(self, key: str, amount: int = 1, ttl: Optional[float] = None) -> int:
        return amount  # a missing key counts from 0, and it is missing again at once

    def delete_prefix(self, prefix: str) -> int:
        return 0

    def result_store_size(self) -> int:
        return 0

    def result_items(self) -> dict[str, bytes]:
        return {}

    def flush_results(self) -> None:
        return None

    # ------------------------------------------------------------------ dead letters

    def add_dead_letter(self, data: bytes, reason: str, attempts: int = 0,
                        enqueued_at: Optional[float] = None, key: Optional[str] = None) -> int:
        return 0

    def dead_letters(self, limit: Optional[int] = None) -> list[DeadLetter]:
        return []

    def dead_letter(self, id: int) -> Optional[DeadLetter]:
        return None

    def dead_letter_count(self) -> int:
        return 0

    def requeue_dead_letters(self, ids: Optional[Iterable[int]] = None,
                             priority: int = 0) -> int:
        return 0

    def purge_dead_letters(self, ids: Optional[Iterable[int]] = None) -> int:
        return 0

    # ------------------------------------------------------------------ owners

    def heartbeat(self, ttl_hint: float = 10.0) -> None:
        return None

    def owners(self) -> list[OwnerInfo]:
        return []

    def claim_owners(self) -> dict[str, int]:
        return {}

    def release_owner(self, owner_id: str) -> int:
        return 0

    def forget_owner(self, owner_id: str) -> bool:
        return False

    # ------------------------------------------------------------------ upkeep

    def purge_expired(self) -> int:
        return 0

    def maintenance(self) -> dict[str, Any]:
        return {'purged': 0}

    def vacuum(self) -> None:
        return None

    def stats(self) -> dict[str, Any]:
        return dict.fromkeys(('ready', 'claimed', 'scheduled', 'results', 'kv_keys',
                              'expired_keys', 'dead_letters', 'db_size', 'wal_size',
                              'page_size', 'page_count', 'freelist_count'), 0)

    # ------------------------------------------------------------------ whole storage

    def flush_all(self) -> None:
        return None

    def transaction(self) -> ContextManager[Any]:
        return contextlib.nullcontext(None)

    def wait_for_change(self, timeout: float, topic: Optional[str] = None) -> bool:
        """Nothing ever changes: waits out ``timeout`` (cut short by :meth:`close`) and
        returns False."""
        if topic is not None and topic not in TOPICS:
            raise ValueError('unknown wait_for_change topic %r (expected one of %s)'
                             % (topic, ', '.join(sorted(TOPICS))))
        self._closed.wait(max(float(timeout), 0.0))
        return False

    def close(self) -> None:
        self._closed.set()
