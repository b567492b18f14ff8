"""Shared fixtures.

Every behavioural test runs against each storage backend (``backend``) and each implementation
of the compiled fast path (``fastpath``: the Cython module and its pure-Python twin), as
aio-libs projects do. ``SQLQ_REQUIRE_EXTENSIONS=1`` (set by CI) turns a missing compiled module
into a failure instead of a skip.
"""
from __future__ import annotations

import os

import pytest

from sqlq import _accel

FASTPATH_IMPLEMENTATIONS = ('compiled', 'twin')
BACKENDS = ('memory', 'sqlite')


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
def make_queue(backend, fastpath, tmp_path):
    """Factory: ``make_queue(**options)`` builds a queue on the current backend."""
    from sqlq import MemoryQueue, SqliteQueue

    made = []

    def factory(name='test', **options):
        if backend == 'memory':
            q = MemoryQueue(name, **options)
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
