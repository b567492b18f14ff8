"""A log handler that formats and writes records on a background thread.

A consumer logs a line when each task starts; written synchronously (time formatting, a
write and a flush) that line cost more than the rest of the path from wake-up to task start.
Here the logging call only queues the record. The writer thread is re-created in forked
children, and ``flush()`` waits until everything queued so far is written.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Optional

_STOP = object()
#: Seconds the writer waits after a first record before writing it and what followed.
WRITE_DELAY = 0.02


class BackgroundHandler(logging.Handler):
    """Hands records to ``target`` from a daemon thread, in order."""

    def __init__(self, target: logging.Handler) -> None:
        super().__init__()
        self.target = target
        self._start()
        if hasattr(os, 'register_at_fork'):
            os.register_at_fork(after_in_child=self._start)

    def _start(self) -> None:
        # After fork only the forking thread survives: a new queue and writer for the child.
        self._queue: 'queue.SimpleQueue' = queue.SimpleQueue()
        self._thread: Optional[threading.Thread] = threading.Thread(
            target=self._write, name='sqlq-log-writer', daemon=True)
        self._thread.start()

    def _write(self) -> None:
        while True:
            batch = [self._queue.get()]
            if isinstance(batch[0], logging.LogRecord):
                # Let the thread that logged (a task about to start) run first: writing at
                # once would take the GIL from it at its next database call.
                time.sleep(WRITE_DELAY)
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            for item in batch:
                if item is _STOP:
                    return
                if isinstance(item, threading.Event):
                    item.set()
                    continue
                try:
                    self.target.handle(item)
                except Exception:
                    self.target.handleError(item)

    def emit(self, record: logging.LogRecord) -> None:
        # Resolve what can't wait: arguments may change, exc_info can't cross threads.
        try:
            record.msg = record.getMessage()
            record.args = None
            if record.exc_info:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
                record.exc_info = None
        except Exception:
            self.handleError(record)
            return
        self._queue.put(record)

    def setFormatter(self, fmt: Optional[logging.Formatter]) -> None:
        self.target.setFormatter(fmt)

    def flush(self, timeout: float = 5.0) -> None:
        """Wait (bounded) until every record queued so far is written."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)
        self.target.flush()

    def close(self) -> None:
        self.flush()
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(5)
        self._thread = None
        self.target.close()
        super().close()


def flush_all() -> None:
    """Flush every handler of the root logger (before a worker process exits)."""
    for handler in logging.getLogger().handlers:
        try:
            handler.flush()
        except Exception:
            pass
