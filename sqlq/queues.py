"""The queues users create: one subclass of the :class:`~sqlq.api.Queue` facade per storage
backend, as huey has SqliteHuey, RedisHuey and MemoryHuey."""
from __future__ import annotations

from typing import Any

from .api import Queue
from .storage.memory import MemoryStorage

__all__ = ['MemoryQueue', 'SqliteQueue', 'RedisQueue']


class MemoryQueue(Queue):
    """A queue in this process's memory: for tests and single-process use."""

    storage_class = MemoryStorage


class SqliteQueue(Queue):
    """A queue in one SQLite file, shared by every producer and consumer process that opens it.

    ``filename`` is the database path; storage options: ``synchronous`` ('NORMAL' default,
    'FULL' for durability across power loss), ``timeout`` (seconds to wait on a locked
    database).
    """

    def __init__(self, filename: str, name: str = 'sqlq', **kwargs: Any) -> None:
        from .storage.sqlite import SqliteStorage
        self.filename = filename
        kwargs.setdefault('storage_class', SqliteStorage)
        super().__init__(name, filename=filename, **kwargs)


class RedisQueue(Queue):
    """A queue on a Redis server, for producers and consumers spread over several hosts.

    Connection: ``url='redis://host:port/db'``, or ``connection_pool=``, or ``host``/``port``/
    ``db``/``password`` and other redis-py connection options. Needs the ``redis`` extra
    (``pip install 'sqlq[redis]'``).
    """

    def __init__(self, name: str = 'sqlq', **kwargs: Any) -> None:
        from .storage.redis import RedisStorage
        kwargs.setdefault('storage_class', RedisStorage)
        super().__init__(name, **kwargs)

