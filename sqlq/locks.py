"""Cross-process mutual exclusion and rate limiting, kept in the queue's key/value store."""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable, Optional, Set, Tuple, TypeVar

from .exceptions import RateLimitExceeded, TaskLockedException
from .storage.base import EMPTY

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
        """Take the lock: True, or TaskLockedException if it is held (as with huey)."""
        if not self.queue.storage.put_if_empty(self.key, b'1', ttl=self.ttl):
            raise TaskLockedException('unable to acquire lock %s' % self.name)
        return True

    def release(self) -> bool:
        """Free the lock; True if it was held."""
        return self.queue.storage.delete_data(self.key)

    clear = release

    def is_locked(self) -> bool:
        return self.queue.storage.has_data_for_key(self.key)

    locked = is_locked

    def __enter__(self) -> 'TaskLock':
        self.acquire()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()


class RateLimit:
    """At most ``limit`` entries per ``per`` seconds (fixed windows), across processes.

    Entering past the limit raises RateLimitExceeded carrying the delay until the next window;
    inside a task with ``retry`` the task is retried then (or after its own ``retry_delay``),
    without using up its retries. ``limit=0`` is always exceeded.
    """

    def __init__(self, queue: 'Queue', name: str, limit: int, per: float,
                 retry: bool = True) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError('rate limit must be an int >= 0, not %r' % (limit,))
        if isinstance(per, bool) or not isinstance(per, (int, float)) or per <= 0:
            raise ValueError('rate limit period must be a positive number, not %r' % (per,))
        self.queue, self.name, self.limit, self.per, self.retry = queue, name, limit, per, retry

    def __call__(self, fn: F) -> F:
        @functools.wraps(fn)
        def limited(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)
        return limited  # type: ignore[return-value]

    def _window(self) -> Tuple[str, float]:
        """The key counting the current window's entries, and the seconds until it ends."""
        now = self.queue.now()
        window = int(now // self.per)
        return '%s%s:%d' % (RATE_LIMIT_PREFIX, self.name, window), (window + 1) * self.per - now

    def acquire(self) -> None:
        """Count one entry; RateLimitExceeded if the window is full (huey's name)."""
        key, remaining = self._window()
        if self.queue.storage.incr(key, 1, ttl=self.per) > self.limit:
            raise RateLimitExceeded(self.name, remaining, self.retry)

    check = acquire

    def current_usage(self) -> int:
        """Entries counted in the current window (refused ones included, as with huey)."""
        raw = self.queue.storage.peek_data(self._window()[0])
        return 0 if raw is EMPTY else int(raw)

    def reset(self) -> None:
        """Forget the current window's entries: the next one starts counting afresh."""
        self.queue.storage.delete_data(self._window()[0])

    def __enter__(self) -> 'RateLimit':
        self.acquire()
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
        """Release every lock this process declared and the named ones (huey's
        ``flush_locks``); returns the names of those that were held. Without names, the
        locks other programs declared on this queue are released too."""
        storage = self.queue.storage
        flushed = set()
        for name in self._declared.union(names):
            if storage.delete_data(LOCK_PREFIX + name):
                flushed.add(name)
        if not names:
            storage.delete_prefix(LOCK_PREFIX)  # locks taken by other programs too
        return flushed
