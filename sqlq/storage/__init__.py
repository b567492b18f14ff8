"""Storage backends: byte-level queue, schedule, key/value and dead-letter stores.

``SqliteStorage`` and ``RedisStorage`` are imported lazily so that importing :mod:`sqlq.storage`
needs neither apsw nor redis-py.
"""
from __future__ import annotations

from typing import Any

from sqlq.storage.base import Storage
from sqlq.storage.blackhole import BlackHoleStorage
from sqlq.storage.memory import MemoryStorage
from sqlq.storage.types import (
    DURATION_BUCKETS,
    EMPTY,
    OUTCOMES,
    TOPICS,
    Claim,
    ClaimedItem,
    DeadLetter,
    Finished,
    HistoryEntry,
    Location,
    OwnerInfo,
    Receipt,
    RunStats,
)

__all__ = ['EMPTY', 'TOPICS', 'Claim', 'ClaimedItem', 'DeadLetter', 'OwnerInfo', 'Receipt',
           'Finished', 'HistoryEntry', 'Location', 'RunStats', 'OUTCOMES', 'DURATION_BUCKETS',
           'Storage', 'MemoryStorage', 'BlackHoleStorage', 'SqliteStorage', 'RedisStorage']


def __getattr__(name: str) -> Any:
    if name == 'SqliteStorage':
        from sqlq.storage.sqlite import SqliteStorage
        return SqliteStorage
    if name == 'RedisStorage':
        from sqlq.storage.redis import RedisStorage
        return RedisStorage
    raise AttributeError('module %r has no attribute %r' % (__name__, name))
