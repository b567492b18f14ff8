"""Fixtures shared by every folder of the suite.

Behavioural tests run against each storage backend (``backend``: memory, SQLite, Redis). They
use the default implementation of the fast path (``fastpath``: the compiled module when it is
built); the tests where the implementation matters -- the codec, ``ClaimBuffer`` and the
worker's batching -- carry the ``both_fastpaths`` mark and run on the compiled module and on its
pure-Python twin, as aio-libs projects do. ``SQLQ_REQUIRE_EXTENSIONS=1`` (set by CI) stops the
session at its start when the compiled module is missing, with one clear message.

The ``redis`` backend runs on one ``redis-server`` started for the whole session (127.0.0.1, a
free port, no persistence) and emptied before each test. Without ``redis-server`` or redis-py
those tests are skipped with the command that installs what is missing -- or fail, where Redis
tests are required (``CI=true``, ``SQLQ_REQUIRE_REDIS=1``: see ``tests/_redis_server.py``).

Hypothesis runs with the ``dev`` profile (fewer examples) unless ``CI=true`` selects ``ci``;
``HYPOTHESIS_PROFILE`` picks either explicitly.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest
from hypothesis import settings

from sqlq import _accel
from tests import _redis_server
from tests._harness import Harness
from tests._helpers import require_compiled

if not _accel.compiled_available():
    # Without the compiled module every sqlq subprocess would print its
    # FastPathUnavailableWarning into the stderr that some tests read exactly: say that the
    # twin is wanted (it is the only one there), which silences the warning.
    os.environ.setdefault('SQLQ_NO_EXTENSIONS', '1')

BACKENDS = ('memory', 'sqlite', 'redis')

settings.register_profile('ci', max_examples=100)
settings.register_profile('dev', max_examples=40)
settings.load_profile(os.environ.get('HYPOTHESIS_PROFILE')
                      or ('ci' if os.environ.get('CI') == 'true' else 'dev'))


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get('SQLQ_REQUIRE_EXTENSIONS') == '1' and not _accel.compiled_available():
        pytest.exit('SQLQ_REQUIRE_EXTENSIONS=1 but the compiled sqlq._fastpath does not import '
                    '(%s); build it with `pip install -e .` (needs a C compiler and Cython)'
                    % _accel.compiled_import_error(), returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if 'fastpath' in metafunc.fixturenames and \
            metafunc.definition.get_closest_marker('both_fastpaths') is not None:
        metafunc.parametrize('fastpath', _accel.IMPLEMENTATIONS, indirect=True)


# -- Redis ---------------------------------------------------------------------------------------
@pytest.fixture
def redis_available() -> None:
    """Skips the test where Redis tests cannot run (fails it where they are required)."""
    _redis_server.skip_unless_available()


@pytest.fixture(scope='session')
def redis_session_server() -> Iterator[_redis_server.RedisServer]:
    """The session's redis-server (started on first use, stopped at the end)."""
    _redis_server.skip_unless_available()
    server = _redis_server.RedisServer().start()
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_session_server: _redis_server.RedisServer) -> str:
    """URL of an empty Redis database for this test."""
    redis_session_server.flush()
    return redis_session_server.url


# -- fast path, backend, queue ------------------------------------------------------------------
@pytest.fixture
def fastpath(request: pytest.FixtureRequest) -> Iterator[str]:
    """The fast-path implementation for the duration of one test: the default one, or (under
    the ``both_fastpaths`` mark) each of 'compiled' and 'twin' in turn."""
    wanted = getattr(request, 'param', _accel.IMPLEMENTATION)
    if wanted == 'compiled':
        require_compiled()
    previous = _accel.IMPLEMENTATION
    _accel.use(wanted)
    try:
        yield wanted
    finally:
        _accel.use(previous)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The storage backend of this test (a folder's conftest or a module's indirect
    parametrisation narrows it)."""
    name: str = request.param
    return name


@pytest.fixture
def make_queue(backend: str, fastpath: str, tmp_path: Path,
               request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """Factory: ``make_queue(**options)`` builds a queue on the current backend."""
    from sqlq import MemoryQueue, SqliteQueue

    made: List[Any] = []
    url = request.getfixturevalue('redis_url') if backend == 'redis' else None

    def factory(name: str = 'test', **options: Any) -> Any:
        q: Any
        if backend == 'memory':
            q = MemoryQueue(name, **options)
        elif backend == 'redis':
            from sqlq import RedisQueue
            q = RedisQueue(name, url=url, **options)
        else:
            q = SqliteQueue(str(tmp_path / 'queue.db'), name=name, **options)
        made.append(q)
        return q

    yield factory
    for q in made:
        q.close()


@pytest.fixture
def queue(make_queue: Callable[..., Any]) -> Any:
    """A fresh queue named 'test' on the current backend and fast-path implementation."""
    return make_queue()


@pytest.fixture
def later(queue: Any) -> Iterator[Callable[..., None]]:
    """``later(seconds, fn, *args)`` runs ``fn(*args)`` in another thread after ``seconds``
    (as a consumer would); those threads are joined before the queue closes."""
    timers: List[threading.Timer] = []

    def start(seconds: float, fn: Callable[..., Any], *args: Any) -> None:
        timers.append(threading.Timer(seconds, fn, args))
        timers[-1].start()

    yield start
    for timer in timers:
        timer.join(10)


# -- subprocesses --------------------------------------------------------------------------------
@pytest.fixture
def start_harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    """``start_harness(app_module, **options)``: a :class:`tests._harness.Harness` on this
    test's files; its processes are killed at the end of the test."""
    made: List[Harness] = []

    def start(app: Any, **options: Any) -> Harness:
        made.append(Harness(tmp_path, app, **options))
        return made[-1]

    yield start
    for harness in made:
        harness.close()
