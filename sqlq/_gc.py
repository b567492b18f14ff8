"""Pausing Python's cycle collector while a large batch of tasks builds its objects."""
from __future__ import annotations

import contextlib
import gc
from typing import Iterator

__all__ = ['GC_PAUSE_MIN_BATCH', 'cycle_collector_paused']

#: Batches at least this large pause the cycle collector while they build their objects.
GC_PAUSE_MIN_BATCH = 1000


@contextlib.contextmanager
def cycle_collector_paused(size: int) -> Iterator[None]:
    """Pause Python's cycle collector while a batch of ``size`` tasks builds its objects.

    A large batch creates several long-lived objects per task (task, arguments, message,
    result handle), none in a reference cycle; the collector would rescan them again and
    again as they pile up -- a fifth of ``map``'s time at 20,000 tasks. Small batches, and
    code that runs with the collector already off, are left alone.
    """
    if size < GC_PAUSE_MIN_BATCH or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
