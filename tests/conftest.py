"""Shared fixtures.

Every behavioural test runs against each storage backend (``backend``) and each implementation
of the compiled fast path (``fastpath``: the Cython module and its pure-Python twin), as
aio-libs projects do. ``SQLQ_REQUIRE_EXTENSIONS=1`` (set by CI) turns a missing compiled module
into a failure instead of a skip.

The ``redis`` backend runs on one ``redis-server`` started for the whole session (127.0.0.1, a
free port, no persistence) and emptied before each test; without ``redis-server`` or redis-py
those tests are skipped with the command that installs what is missing.
"""
from __future__ import annotations

import os

import pytest

from sqlq import _accel

from _redis_server import RedisServer, unavailable_reason

if not _accel.compiled_available():
    # Without the compiled module every sqlq subprocess would print its
    # FastPathUnavailableWarning into the stderr that some tests read exactly: say that the
    # twin is wanted (it is the only one there), which silences the warning.
    os.environ.setdefault('SQLQ_NO_EXTENSIONS', '1')

FASTPATH_IMPLEMENTATIONS = ('compiled', 'twin')
BACKENDS = ('memory', 'sqlite', 'redis')


@pytest.fixture(scope='session')
def redis_session_server():
    """The session's redis-server (started on first use, stopped at the end)."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_session_server):
    """URL of an empty Redis database for this test."""
    redis_session_server.flush()
    return redis_session_server.url


@pytest.fixture(params=FASTPATH_IMPLEMENTATIONS)
def fastpath(request):
    """Select the compiled module or its pure twin for the duration of one test."""
    wanted = request.param
    if wanted == 'compiled' and not _accel.compiled_available():
        if os.environ.get('SQLQ_REQUIRE_EXTENSIONS') == '1':
            pytest.fail('SQLQ_REQUIRE_EXTENSIONS=1 but sqlq._fastpath is not built: %s'
                        % _accel.compiled_import_error())
        pytest.skip('compiled sqlq._fastpath unavailable (%s)' % _accel.compiled_import_error())
    previous = _accel.IMPLEMENTATION
    _accel.use(wanted)
    try:
        yield wanted
    finally:
        _accel.use(previous)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def make_queue(backend, fastpath, tmp_path, request):
    """Factory: ``make_queue(**options)`` builds a queue on the current backend."""
    from sqlq import MemoryQueue, SqliteQueue

    made = []
    url = request.getfixturevalue('redis_url') if backend == 'redis' else None

    def factory(name='test', **options):
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
def queue(make_queue):
    """A fresh queue named 'test' on the current backend and fast-path implementation."""
    return make_queue()
