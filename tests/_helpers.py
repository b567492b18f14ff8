"""Helpers shared by the behavioural tests."""
from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from concurrent.futures import ThreadPoolExecutor

    from sqlq.api import Queue

T = TypeVar('T')

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT_DIR = os.path.dirname(TESTS_DIR)  # the repository: on the path of every subprocess


def drain(queue: 'Queue', limit: int = 1000) -> int:
    """Claim and execute ready tasks until none is left; how many ran (bounded by ``limit``)."""
    ran = 0
    while ran < limit:
        task = queue.dequeue()
        if task is None:
            return ran
        queue.execute(task)
        ran += 1
    raise AssertionError('queue did not drain within %d tasks' % limit)


def wait_for(predicate: Callable[[], T], timeout: float = 15.0, what: str = 'condition',
             describe: Optional[Callable[[], str]] = None, interval: float = 0.02) -> T:
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` passes
    (AssertionError naming ``what``, plus ``describe()`` for context)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('timed out after %ss waiting for %s%s' % (
                timeout, what, '\n' + describe() if describe else ''))
        time.sleep(interval)  # polling interval of a bounded wait, not synchronisation


def require_compiled() -> None:
    """Skip the calling test when the compiled ``sqlq._fastpath`` is not built.

    With ``SQLQ_REQUIRE_EXTENSIONS=1`` the session never gets here without it: the root
    conftest stops the run at its start instead.
    """
    import pytest

    from sqlq import _accel
    if not _accel.compiled_available():
        pytest.skip('compiled sqlq._fastpath unavailable (%s)' % _accel.compiled_import_error())


class InItsOwnThread:
    """A storage whose calls run in one thread of their own, as a producer's do (a wake-up
    never goes to the writer's own thread). Calls wait ``timeout`` seconds at most."""

    def __init__(self, storage: Any, timeout: float = 10.0) -> None:
        from concurrent.futures import ThreadPoolExecutor
        self.storage = storage
        self.timeout = timeout
        self._thread: 'ThreadPoolExecutor' = ThreadPoolExecutor(1)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.storage, name)
        return lambda *args: self._thread.submit(method, *args).result(self.timeout)

    def run(self, fn: Callable[[Any], T]) -> T:
        """``fn(storage)`` in the storage's thread; its result."""
        return self._thread.submit(fn, self.storage).result(self.timeout)

    def close(self) -> None:
        self.run(lambda storage: storage.close())
        self._thread.shutdown()


def storage_outage(storage: Any, monkeypatch: Any, names: 'list[str]', calls: int) -> 'list[str]':
    """Make ``storage``'s methods ``names`` raise StorageUnavailableError on their next
    ``calls`` calls (counted together), as a server that is down would; the list of the
    names of the calls that failed (it grows as they do)."""
    from sqlq.exceptions import StorageUnavailableError
    failed: 'list[str]' = []
    for name in names:
        original = getattr(storage, name)

        def failing(*args: Any, _original: Any = original, _name: str = name,
                    **kwargs: Any) -> Any:
            if len(failed) < calls:
                failed.append(_name)
                raise StorageUnavailableError('injected: server unreachable (%s)' % _name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(storage, name, failing)
    return failed
