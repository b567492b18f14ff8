"""sqlq's test suite (a package, so every module imports as ``tests.<folder>.<module>``).

Where a behaviour's tests live: ``storage/`` (the storage contract on every backend; SQLite-
and Redis-only behaviour in ``storage/sqlite/`` and ``storage/redis/``), ``tasks/`` (the task
layer: enqueue, execute, pipelines, results, signals, locks, scheduling, serialization),
``consumer/`` (worker, embedded consumer, ``sqlq consume``, logging), ``fastpath/`` (the compiled
codec and its pure twin), ``reliability/`` (delivery guarantees, bad input, many processes,
kill -9), ``cli/`` (inspection commands) and ``test_imports.py`` (the package's layering).
Shared fixtures are in ``conftest.py`` files; shared helpers in the ``_*.py`` modules; the
applications that subprocesses load in ``apps/``.
"""
