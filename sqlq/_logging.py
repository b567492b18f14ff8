"""A log handler that formats and writes records on a background thread.

A consumer logs a line when each task starts; written synchronously (time formatting, a
write and a flush) that line cost more than the rest of the path from wake-up to task start.
Here the logging call only queues the record. The writer thread is re-created in forked
children, and ``flush()`` waits until everything queued so far is written.

The two lines per task (start; done with duration) can skip the LogRecord entirely:
:func:`line_logger` gives the worker a function that queues ``(time, level, text)`` when the
record would reach nothing but a BackgroundHandler, which formats it like a record (with
:class:`ConsumerFormatter`, from a prefix cached per second). Building a LogRecord (caller
lookup, process and thread names) cost more than a no-op task.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Any, Callable, List, Optional, Tuple

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
        self._queue: 'queue.SimpleQueue[Any]' = queue.SimpleQueue()
        self._thread: Optional[threading.Thread] = threading.Thread(
            target=self._write, name='sqlq-log-writer', daemon=True)
        self._thread.start()

    def _write(self) -> None:
        while True:
            batch = [self._queue.get()]
            if isinstance(batch[0], (logging.LogRecord, tuple)):
                # Let the thread that logged (a task about to start) run first: writing at
                # once would take the GIL from it at its next database call.
                time.sleep(WRITE_DELAY)
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            lines: List[str] = []
            for item in batch:
                if isinstance(item, tuple):
                    self._format_line(item, lines)
                    continue
                self._write_lines(lines)
                if item is _STOP:
                    return
                if isinstance(item, threading.Event):
                    item.set()
                    continue
                try:
                    self.target.handle(item)
                except Exception:
                    self.target.handleError(item)
            self._write_lines(lines)

    def _format_line(self, item: Tuple[Any, ...], lines: List[str]) -> None:
        formatter = self.target.formatter
        if isinstance(formatter, ConsumerFormatter) and \
                isinstance(self.target, logging.StreamHandler) and not self.target.filters:
            lines.append(formatter.format_line(*item) + self.target.terminator)
            return
        self._write_lines(lines)  # keep the order
        record = _record(*item)
        try:
            self.target.handle(record)
        except Exception:
            self.target.handleError(record)

    def _write_lines(self, lines: List[str]) -> None:
        """Write formatted lines with one write and one flush."""
        if not lines:
            return
        text = ''.join(lines)
        lines.clear()
        target = self.target
        assert isinstance(target, logging.StreamHandler)
        with target.lock:  # type: ignore[union-attr]
            try:
                stream = target.stream
                if stream is None and isinstance(target, logging.FileHandler):
                    stream = target.stream = target._open()
                stream.write(text)
                target.flush()
            except Exception:
                target.handleError(_record(time.time(), logging.ERROR, 'sqlq', text,
                                           '', ''))

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

    def enqueue_line(self, levelno: int, name: str, text: str) -> None:
        """Queue one line of logger ``name`` without building a LogRecord."""
        self._queue.put((time.time(), levelno, name, text, threading.current_thread().name,
                         _process_name()))

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


class ConsumerFormatter(logging.Formatter):
    """The consumer's log format; :meth:`format_line` formats a queued line quickly."""

    def __init__(self, simple: bool = False) -> None:
        super().__init__('%(message)s' if simple else
                         '[%(asctime)s] %(levelname)s:%(name)s:%(processName)s:'
                         '%(threadName)s: %(message)s')
        self.simple = simple
        self._second = -1
        self._stamp = ''

    def format_line(self, created: float, levelno: int, name: str, text: str, thread: str,
                    process: str) -> str:
        """The line ``format`` would give a record with these fields."""
        if self.simple:
            return text
        second = int(created)
        if second != self._second:
            self._stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return '[%s,%03d] %s:%s:%s:%s: %s' % (
            self._stamp, int((created - second) * 1000), logging.getLevelName(levelno), name,
            process, thread, text)


def line_logger(logger: logging.Logger, levelno: int) -> Optional[Callable[[str], None]]:
    """A function logging a finished line at ``levelno`` through ``logger``; None if that
    level is disabled. Skips the LogRecord when a BackgroundHandler would be its only
    destination (decided now: call again after changing the logging configuration)."""
    if not logger.isEnabledFor(levelno):
        return None
    handlers: List[logging.Handler] = []
    current: Optional[logging.Logger] = logger
    plain = True
    while current is not None:
        plain = plain and not current.filters
        handlers.extend(current.handlers)
        current = current.parent if current.propagate else None
    if plain and len(handlers) == 1 and isinstance(handlers[0], BackgroundHandler) and \
            not handlers[0].filters and handlers[0].level <= levelno:
        enqueue, name = handlers[0].enqueue_line, logger.name
        return lambda text: enqueue(levelno, name, text)
    log = logger.log
    return lambda text: log(levelno, '%s', text)


def _record(created: float, levelno: int, name: str, text: str, thread: str,
            process: str) -> logging.LogRecord:
    record = logging.LogRecord(name, levelno, __file__, 0, text, None, None)
    record.created = created
    record.msecs = (created - int(created)) * 1000
    record.threadName = thread
    record.processName = process
    return record


_process: Tuple[int, str] = (0, '')


def _process_name() -> str:
    """multiprocessing's name for this process (as LogRecord.processName), cached per pid."""
    global _process
    pid = os.getpid()
    if _process[0] != pid:
        import multiprocessing
        _process = (pid, multiprocessing.current_process().name)
    return _process[1]


def flush_all() -> None:
    """Flush every handler of the root logger (before a worker process exits)."""
    for handler in logging.getLogger().handlers:
        try:
            handler.flush()
        except Exception:
            pass
