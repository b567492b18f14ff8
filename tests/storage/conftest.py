"""Fixtures of the storage tests: storages built directly (no task layer) on the current
``backend``, and the producer/worker pair of the hand-off tests."""
from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest

from sqlq.storage import MemoryStorage, Storage
from sqlq.storage.sqlite import SqliteStorage
from tests._clock import FakeClock
from tests._helpers import InItsOwnThread
from tests.storage._helpers import FLAGS, WAIT


@pytest.fixture
def clock() -> FakeClock:
    """The clock of the storages ``make_storage`` builds."""
    return FakeClock(1_000_000.0)


@pytest.fixture
def make_storage(backend: str, tmp_path: Path, clock: FakeClock,
                 request: pytest.FixtureRequest) -> Iterator[Callable[..., Storage]]:
    """Factory: ``make_storage(name='test', clock=clock, **options)``; storages made in one test
    share one backend (the same SQLite file), so that queue-name isolation is real for SQLite."""
    made: List[Storage] = []
    url = request.getfixturevalue('redis_url') if backend == 'redis' else None

    def factory(name: str = 'test', clock: Any = clock, **options: Any) -> Storage:
        if backend == 'memory':
            s: Storage = MemoryStorage(name, clock=clock, **options)
        elif backend == 'redis':
            from sqlq.storage.redis import RedisStorage
            s = RedisStorage(name, url=url, clock=clock, **options)
        else:
            s = SqliteStorage(str(tmp_path / 'contract.db'), name, clock=clock, timeout=10,
                              **options)
        made.append(s)
        return s

    yield factory
    for s in made:
        s.close()


@pytest.fixture
def storage(make_storage: Callable[..., Storage]) -> Storage:
    return make_storage()


# -- the hand-off: SQLite and Redis -------------------------------------------------------------
@pytest.fixture
def open_storage(backend: str, tmp_path: Path,
                 request: pytest.FixtureRequest) -> Iterator[Callable[[], Any]]:
    """Opens storages of one queue of ``backend`` (closed at the end of the test)."""
    stack = contextlib.ExitStack()
    make: Callable[[], Any]
    if backend == 'sqlite':
        path = str(tmp_path / 'queue.db')

        def make() -> Any:
            return SqliteStorage(path, flag_prefix=FLAGS)
    else:
        from sqlq.storage.redis import RedisStorage
        url, name = request.getfixturevalue('redis_url'), 'handoff-' + uuid.uuid4().hex[:8]

        def make() -> Any:
            return RedisStorage(name, url=url, flag_prefix=FLAGS)

    def open_one() -> Any:
        storage = make()
        stack.callback(storage.close)
        return storage

    with stack:
        yield open_one


@pytest.fixture
def producer(open_storage: Callable[[], Any]) -> Iterator[InItsOwnThread]:
    """The producer: its calls run in a thread of their own, as a producer's do."""
    p = InItsOwnThread(open_storage(), WAIT)
    yield p
    p._thread.shutdown()


@pytest.fixture
def open_worker(open_storage: Callable[[], Any]) -> Callable[[], Any]:
    """Opens worker storages; each one's session runs in the calling thread."""
    return open_storage
