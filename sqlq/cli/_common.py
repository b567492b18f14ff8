"""What every ``sqlq`` command shares: the user-error exception, exit statuses, the queue
argument (``module.attribute``) and the positive-number argument types."""
from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
from typing import Any

EXIT_USAGE = 2
EXIT_NOT_FOUND = 1


class CliError(Exception):
    """A problem the user can fix; reported as one line, exit status 2 (or ``exit_code``)."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def load_queue(path: str) -> Any:
    """The Queue object named by ``module.attribute`` (the current directory is importable)."""
    from ..api import Queue
    module_name, _, attribute = path.rpartition('.')
    if not module_name or not attribute:
        raise CliError('expected module.attribute (e.g. app.queue), not %r' % path)
    if os.getcwd() not in sys.path and '' not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CliError('cannot import module %r: %s' % (module_name, exc)) from None
    except Exception as exc:
        from ..exceptions import StorageCorruptError
        from ..worker import EXIT_STORAGE_CORRUPT
        raise CliError('importing module %r failed: %s: %s'
                       % (module_name, type(exc).__name__, exc),
                       EXIT_STORAGE_CORRUPT if isinstance(exc, StorageCorruptError)
                       else EXIT_USAGE) from None
    try:
        obj = getattr(module, attribute)
    except AttributeError:
        raise CliError('module %r has no attribute %r' % (module_name, attribute)) from None
    if not isinstance(obj, Queue):
        raise CliError('%s is a %s, not a sqlq queue (SqliteQueue, MemoryQueue, ...)'
                       % (path, type(obj).__name__))
    return obj


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError('must be a positive integer, not %s' % text)
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError('must be a positive number of seconds, not %s' % text)
    return value
