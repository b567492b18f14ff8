"""Cross-process mutual exclusion and rate limiting, kept in the queue's key/value store."""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable, Optional, Set, TypeVar

from .exceptions import RateLimitExceeded, TaskLockedException

if TYPE_CHECKING:  # pragma: no cover
    from .api import Queue

F = TypeVar('F', bound=Callable[..., Any])

LOCK_PREFIX = 'lock:'
RATE_LIMIT_PREFIX = 'rate:'


class TaskLock:
    """A named lock: a decorator or context manager raising TaskLockedException when held.

    With ``ttl`` (seconds) a lock left by a crashed holder frees itself (on every backend).
    """

    def __init__(self, queue: 'Queue', name: str, ttl: Optional[float] = None) -> None:
        if ttl is not None and (not isinstance(ttl, (int, float)) or ttl <= 0):
            raise ValueError('lock ttl must be a positive number of seconds, not %r' % (ttl,))
        self.queue, self.name, self.ttl = queue, name, ttl
        self.key = LOCK_PREFIX + name

    def __call__(self, fn: F) -> F:
        @functools.wraps(fn)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)
        return locked  # type: ignore[return-value]

    def acquire(self) -> bool:
        """Take the lock if free; True if taken."""
        return self.queue.storage.put_if_empty(self.key, b'1', ttl=self.ttl)

    def release(self) -> bool:
        return self.queue.storage.delete_data(self.key)

    clear = release

    def is_locked(self) -> bool:
        return self.queue.storage.has_data_for_key(self.key)

    def __enter__(self) -> 'TaskLock':
        if not self.acquire():
            raise TaskLockedException('unable to set lock: %s' % self.name)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()


class RateLimit:
    """At most ``limit`` entries per ``per`` seconds (fixed windows), across processes.

    Entering past the limit raises RateLimitExceeded carrying the delay until the next window;
    inside a task with ``retry`` the task is retried then, without using up its retries.
    """

    def __init__(self, queue: 'Queue', name: str, limit: int, per: float,
                 retry: bool = True) -> None:
        if not isinstance(limit, int) or limit < 1:
            raise ValueError('rate limit must be a positive int, not %r' % (limit,))
        if not isinstance(per, (int, float)) or per <= 0:
            raise ValueError('rate limit period must be a positive number, not %r' % (per,))
        self.queue, self.name, self.limit, self.per, self.retry = queue, name, limit, per, retry

    def __call__(self, fn: F) -> F:
        @functools.wraps(fn)
        def limited(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)
        return limited  # type: ignore[return-value]

    def check(self) -> None:
        """Count one entry; RateLimitExceeded if the window is full."""
        now = self.queue.now()
        window = int(now // self.per)
        key = '%s%s:%d' % (RATE_LIMIT_PREFIX, self.name, window)
        if self.queue.storage.incr(key, 1, ttl=self.per) > self.limit:
            raise RateLimitExceeded(self.name, (window + 1) * self.per - now, self.retry)

    def __enter__(self) -> 'RateLimit':
        self.check()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        return None


class Locks:
    """The locks a queue's program declared (``lock_task``), for ``flush_locks``."""

    def __init__(self, queue: 'Queue') -> None:
        self.queue = queue
        self._declared: Set[str] = set()

    def lock(self, name: str, ttl: Optional[float] = None) -> TaskLock:
        """A lock named ``name``, remembered as declared by this process."""
        self._declared.add(name)
        return TaskLock(self.queue, name, ttl)

    def flush(self, *names: str) -> Set[str]:
        """Release the named locks, or every lock when no names are given; returns the names
        of the released locks known to this process."""
        storage = self.queue.storage
        flushed = set()
        for name in set(names) or self._declared:
            if storage.delete_data(LOCK_PREFIX + name):
                flushed.add(name)
        if not names:
            storage.delete_prefix(LOCK_PREFIX)  # locks taken by other programs too
        return flushed
