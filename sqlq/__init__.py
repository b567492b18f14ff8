"""sqlq: a task queue that needs nothing but one SQLite file.

The task API mirrors huey 3.x: ``from huey import SqliteHuey`` becomes
``from sqlq import SqliteQueue``.
"""
from .api import Queue
from .crontab import crontab
from .exceptions import (
                         RETRYING_EXCEPTIONS,
                         CancelExecution,
                         ConfigurationError,
                         DatabaseLockedError,
                         DatabaseSharedError,
                         DeserializationError,
                         HueyException,
                         MessageDecodeError,
                         RateLimitExceeded,
                         ResultTimeout,
                         RetryTask,
                         SerializationError,
                         SignatureError,
                         SqlqError,
                         StorageCorruptError,
                         StorageError,
                         StorageUnavailableError,
                         TaskException,
                         TaskLockedException,
                         TaskTimeout,
                         TransactionConflict,
                         UnknownTaskError,
)
from .locks import RateLimit, TaskLock
from .options import TaskOptions
from .queues import MemoryQueue, RedisQueue, SqliteQueue
from .result import SKIPPED, Error, Result, ResultGroup
from .serializer import Serializer, SignedSerializer
from .signals import (
                         SIGNAL_CANCELED,
                         SIGNAL_COMPLETE,
                         SIGNAL_ENQUEUED,
                         SIGNAL_ERROR,
                         SIGNAL_EXECUTING,
                         SIGNAL_EXPIRED,
                         SIGNAL_INTERRUPTED,
                         SIGNAL_LOCKED,
                         SIGNAL_RATE_LIMITED,
                         SIGNAL_RETRYING,
                         SIGNAL_REVOKED,
                         SIGNAL_SCHEDULED,
                         SIGNAL_TIMEOUT,
)
from .task import PeriodicTask, Task
from .workflows import ChordResult, chord, group
from .wrapper import TaskWrapper

__version__ = '0.1.0'

__all__ = [
    'Queue', 'SqliteQueue', 'MemoryQueue', 'RedisQueue', 'crontab', 'group', 'chord', 'ChordResult',
    'Result', 'ResultGroup', 'Error', 'SKIPPED', 'Task', 'PeriodicTask', 'TaskWrapper',
    'TaskOptions', 'TaskLock', 'RateLimit', 'Serializer', 'SignedSerializer',
    'SqlqError', 'HueyException', 'ConfigurationError', 'StorageError', 'DatabaseLockedError',
    'DatabaseSharedError', 'StorageCorruptError', 'StorageUnavailableError',
    'TransactionConflict',
    'SerializationError', 'DeserializationError', 'SignatureError', 'MessageDecodeError',
    'UnknownTaskError', 'TaskException', 'TaskLockedException', 'ResultTimeout',
    'CancelExecution', 'RetryTask', 'TaskTimeout', 'RateLimitExceeded', 'RETRYING_EXCEPTIONS',
    'SIGNAL_CANCELED', 'SIGNAL_COMPLETE', 'SIGNAL_ENQUEUED', 'SIGNAL_ERROR', 'SIGNAL_EXECUTING',
    'SIGNAL_EXPIRED', 'SIGNAL_INTERRUPTED', 'SIGNAL_LOCKED', 'SIGNAL_RATE_LIMITED',
    'SIGNAL_RETRYING', 'SIGNAL_REVOKED', 'SIGNAL_SCHEDULED', 'SIGNAL_TIMEOUT',
]
