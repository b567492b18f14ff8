"""Helpers of the storage tests (the contract, batch claims, the hand-off), also used by the
worker tests that play a dead owner."""
from __future__ import annotations

import contextlib
import os
import threading
from typing import Any, Callable, List, Optional, TypeVar

from sqlq.storage._owners import OwnerId
from sqlq.storage.sqlite import SqliteStorage

T = TypeVar('T')

WAIT = 10  # seconds: bound of every wait in the hand-off tests
FLAGS = 'revoke:'  # the flag prefix of the storages below (as the task layer's revoke keys)
DEAD = 'deadhost:4242:abcd1234'  # an owner id of a process that is gone


def run_threads(target: Callable[[int], object], n: int, timeout: float = 20.0) -> None:
    """Run ``target(i)`` in ``n`` threads at once; re-raise what any of them raised."""
    errors: List[BaseException] = []

    def wrapped(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), 'worker thread did not finish in %ss' % timeout
    assert not errors, errors


def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` called in another thread; its result."""
    out: List[T] = []
    t = threading.Thread(target=lambda: out.append(fn(*args)), daemon=True)
    t.start()
    t.join(30)
    assert not t.is_alive()
    return out[0]


class as_owner:
    """Make ``storage`` claim as another process (owner id ``owner``) inside the block."""

    def __init__(self, storage: Any, owner: str) -> None:
        self.storage, self.owner = storage, owner
        self.saved: Optional[OwnerId] = None

    def __enter__(self) -> Any:
        self.saved = self.storage._owner
        pinned = OwnerId()
        pinned._pid, pinned._id = os.getpid(), self.owner
        self.storage._owner = pinned
        return self.storage

    def __exit__(self, *exc: object) -> None:
        assert self.saved is not None
        self.storage._owner = self.saved


def idle_count(storage: Any) -> int:
    """How many idle workers are registered on the queue."""
    if isinstance(storage, SqliteStorage):
        return len(storage._rows('SELECT 1 FROM idle_worker'))
    count: int = storage._client.zcard(storage._qprefix + 'idle')
    return count


def go_idle(worker: Any, stack: contextlib.ExitStack) -> None:
    """Enter ``worker``'s session and let it find the queue empty: it registers."""
    stack.enter_context(worker.worker_session())
    before = idle_count(worker)
    assert worker.dequeue_many(4) == []
    assert idle_count(worker) == before + 1


def pragma(conn: Any, name: str) -> Any:
    """The value of ``PRAGMA name`` on an apsw connection."""
    return conn.execute('PRAGMA %s' % name).fetchall()[0][0]
