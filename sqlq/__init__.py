"""sqlq: a task queue that needs nothing but one SQLite file.

The task API mirrors huey 3.x: ``from huey import SqliteHuey`` becomes
``from sqlq import SqliteQueue``.
"""
from .api import ChordResult, MemoryQueue, Queue, RedisQueue, SqliteQueue, chord, group
from .crontab import crontab
from .exceptions import (RETRYING_EXCEPTIONS, CancelExecution, ConfigurationError,
                         DatabaseLockedError, DeserializationError, HueyException,
                         MessageDecodeError, RateLimitExceeded, ResultTimeout, RetryTask,
                         SerializationError, SignatureError, SqlqError, StorageError,
                         StorageUnavailableError, TaskException, TaskLockedException,
                         TaskTimeout, TransactionConflict, UnknownTaskError)
from .locks import RateLimit, TaskLock
from .result import SKIPPED, Error, Result, ResultGroup
from .serializer import Serializer, SignedSerializer
from .signals import *  # noqa: F401,F403  (SIGNAL_* constants, as huey.signals has)
from .signals import __all__ as _signal_names
from .task import PeriodicTask, Task, TaskWrapper

__version__ = '0.1.0'

__all__ = [
    'Queue', 'SqliteQueue', 'MemoryQueue', 'RedisQueue', 'crontab', 'group', 'chord', 'ChordResult',
    'Result', 'ResultGroup', 'Error', 'SKIPPED', 'Task', 'PeriodicTask', 'TaskWrapper',
    'TaskLock', 'RateLimit', 'Serializer', 'SignedSerializer',
    'SqlqError', 'HueyException', 'ConfigurationError', 'StorageError', 'DatabaseLockedError',
    'StorageUnavailableError', 'TransactionConflict',
    'SerializationError', 'DeserializationError', 'SignatureError', 'MessageDecodeError',
    'UnknownTaskError', 'TaskException', 'TaskLockedException', 'ResultTimeout',
    'CancelExecution', 'RetryTask', 'TaskTimeout', 'RateLimitExceeded', 'RETRYING_EXCEPTIONS',
] + [n for n in _signal_names if n.startswith('SIGNAL_')]
