"""Exceptions raised by sqlq.

Names mirror huey's so that ``except huey.exceptions.X`` becomes ``except sqlq.X``.
Every exception sqlq raises derives from :class:`SqlqError`.
"""
from __future__ import annotations

from typing import Any, Dict, Optional


class SqlqError(Exception):
    """Base class of every sqlq exception."""


# huey's base class name, kept for code that catches it.
HueyException = SqlqError


class ConfigurationError(SqlqError):
    """The queue, a task or the consumer was configured with invalid options."""


class StorageError(SqlqError):
    """The storage backend cannot be opened or used (bad file, locked, foreign schema...)."""


class DatabaseLockedError(StorageError):
    """The database stayed locked by another connection past the busy timeout."""


class DatabaseSharedError(StorageError):
    """Another copy of the SQLite library in this process (Python's ``sqlite3`` module, used by
    Django or SQLAlchemy) uses the queue's database file: SQLite's locks cannot work between
    the two, and writes would be lost. Give the queue a file of its own."""


class StorageCorruptError(StorageError):
    """The database file is damaged (SQLite reports it corrupt, or not a database at all).
    Retrying does not help: stop using the file, check it (``PRAGMA integrity_check``) and
    restore it from a backup."""

    @classmethod
    def of_file(cls, path: str, detail: str, header: bool = False) -> 'StorageCorruptError':
        """The error for the damaged file ``path`` (``header``: not even recognisable as a
        database): what is wrong, and what to do."""
        what = ('%r is not a SQLite database, or its header is damaged' if header
                else 'sqlq database %r is damaged') % (path,)
        return cls('%s (%s). Stop using it: check it with `sqlite3 %s "PRAGMA '
                   'integrity_check"`, then restore it from a backup (or save what is readable '
                   "with the sqlite3 shell's .recover)" % (what, detail, path))


class StorageUnavailableError(StorageError):
    """The storage server cannot be reached (down, connection refused or reset, timeout, still
    loading its data). Retrying later may succeed."""


class TransactionConflict(StorageError):
    """A transaction was not applied because data it read changed before it committed (a
    claim taken over, a key written by someone else); nothing of it was written. Running the
    block again sees the new state."""


class SerializationError(SqlqError, ValueError):
    """A value could not be serialized (for example an unpicklable argument)."""


class DeserializationError(SqlqError, ValueError):
    """Stored bytes could not be turned back into a value."""


class SignatureError(DeserializationError):
    """Signed data failed verification: it was tampered with or signed with another secret."""


class MessageDecodeError(DeserializationError):
    """A task message is truncated, garbled or of an unknown format version."""


class UnknownTaskError(SqlqError, KeyError):
    """A message names a task that is not registered in this process."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else 'unknown task'


class TaskException(SqlqError):
    """A task failed; ``metadata`` holds the error, traceback, task id and name, retries."""

    def __init__(self, metadata: Optional[Dict[str, Any]] = None, *args: Any) -> None:
        self.metadata = metadata or {}
        super().__init__(*args)

    def __getattr__(self, attr: str) -> Any:
        if attr != 'metadata' and attr in self.__dict__.get('metadata', {}):
            return self.metadata[attr]
        raise AttributeError(attr)

    def __str__(self) -> str:
        return str(self.metadata.get('error') or super().__str__())


class TaskLockedException(SqlqError):
    """A task could not acquire its lock (see ``queue.lock_task``)."""


class ResultTimeout(SqlqError):
    """``Result.get(blocking=True, timeout=...)`` ran out of time."""


class CancelExecution(SqlqError):
    """Raised in a pre-execute hook (or a task) to cancel the task, as with huey.

    From a pre-execute hook the task does not run and stores nothing. Raised by the task
    itself it stores a TaskException (like any error) and ``retry`` overrides the task's
    retry policy: None (default) retries if the task has retries left (using one), True
    retries it anyway, False never retries it.
    """

    def __init__(self, msg: Optional[str] = None, retry: Optional[bool] = None,
                 *args: Any) -> None:
        if isinstance(msg, bool) and retry is None:  # sqlq's former order: (retry, *args)
            msg, retry = None, msg
        self.retry = retry
        super().__init__(*((msg,) if msg is not None else ()), *args)


class RetryTask(SqlqError):
    """Raised by a task to be retried, optionally at ``eta`` or after ``delay`` seconds."""

    def __init__(self, msg: Optional[str] = None, eta: Any = None, delay: Any = None,
                 *args: Any) -> None:
        self.eta, self.delay = eta, delay
        super().__init__(*((msg,) if msg is not None else ()), *args)


class TaskTimeout(SqlqError):
    """A task ran longer than its ``timeout``."""


class RateLimitExceeded(SqlqError):
    """A rate limit was hit; the task is retried after ``delay`` seconds if ``retry``."""

    def __init__(self, key: str, delay: float, retry: bool = True) -> None:
        self.key, self.delay, self.retry = key, delay, retry
        super().__init__(key, delay, retry)  # its args rebuild it: picklable, as huey's

    def __str__(self) -> str:
        return 'Rate limit exceeded on "%s" (next window in %.3fs)' % (self.key, self.delay)


# Exceptions whose retry does not use up one of the task's ``retries``.
RETRYING_EXCEPTIONS = (RetryTask, RateLimitExceeded, TaskLockedException)
