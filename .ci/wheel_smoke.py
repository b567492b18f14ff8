"""Smoke test of an installed wheel (cibuildwheel's test-command): the compiled fast path
imports and is the one in use, and a task round-trips through a SQLite queue file."""
from __future__ import annotations

import os
import tempfile

import sqlq
import sqlq._fastpath  # noqa: F401  (fails loudly if the wheel lacks the extension)
from sqlq import _accel

assert _accel.IMPLEMENTATION == 'compiled', _accel.compiled_import_error()

with tempfile.TemporaryDirectory() as directory:
    queue = sqlq.SqliteQueue(os.path.join(directory, 'smoke.db'), immediate=True,
                             immediate_use_memory=False)

    @queue.task()
    def add(a: int, b: int) -> int:
        return a + b

    assert add(1, 2)(blocking=True, timeout=10) == 3
    queue.storage.close()
print('sqlq %s wheel smoke test passed (fast path: %s)' % (sqlq.__version__,
                                                          _accel.IMPLEMENTATION))
