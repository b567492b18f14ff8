"""Storage on a Redis server, through redis-py: :class:`RedisStorage`.

The modules of this package are the only ones of sqlq that import redis.
"""
from __future__ import annotations

from sqlq.storage.redis.storage import HAND_OFF_MAX as HAND_OFF_MAX
from sqlq.storage.redis.storage import RedisStorage

__all__ = ['RedisStorage']
