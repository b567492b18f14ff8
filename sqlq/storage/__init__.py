"""Storage backends: byte-level queue, schedule, key/value and dead-letter stores.

``SqliteStorage`` is imported lazily so that importing :mod:`sqlq.storage` does not need apsw.
"""
from __future__ import annotations

from typing import Any

from sqlq.storage.base import EMPTY, TOPICS, Claim, ClaimedItem, DeadLetter, OwnerInfo, Storage
from sqlq.storage.memory import MemoryStorage

__all__ = ['EMPTY', 'TOPICS', 'Claim', 'ClaimedItem', 'DeadLetter', 'OwnerInfo', 'Storage',
           'MemoryStorage', 'SqliteStorage']


def __getattr__(name: str) -> Any:
    if name == 'SqliteStorage':
        from sqlq.storage.sqlite import SqliteStorage
        return SqliteStorage
    raise AttributeError('module %r has no attribute %r' % (__name__, name))
